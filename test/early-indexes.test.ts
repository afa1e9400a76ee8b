// Keys and indexes built during the full load (buildTableIndexes): a table's
// own keys and indexes, then the FKs between tables whose keys exist. With
// change capture to follow (mode.incremental), secondary unique indexes,
// unique constraints and FKs wait for the consistency point (replay may revisit older row states until then).
import { describe, expect, it } from 'vitest';
import { applySchemaStage, buildTableIndexes, planSchema } from '../activities/schema';
import { session } from '../lib/io/session';
import { makePair, uid, type Pair } from './harness/env';
import { waitUntil } from './harness/wait';
import { claimDestination } from './fixtures/schema-source';

const SOURCE = `
CREATE SCHEMA app;
CREATE TABLE app.a (id int PRIMARY KEY, code text NOT NULL CONSTRAINT a_code_key UNIQUE, v int, w int);
CREATE INDEX a_v_idx ON app.a (v);
CREATE UNIQUE INDEX a_w_uidx ON app.a (w);
CREATE TABLE app.b (id int PRIMARY KEY, a_id int CONSTRAINT b_a_fk REFERENCES app.a (id));`;

async function indexesAndFks(pair: Pair): Promise<string[]> {
  const rows = await pair.destination.sql<{ n: string }>(
    `SELECT indexrelid::regclass::text AS n FROM pg_index WHERE indrelid IN ('app.a'::regclass, 'app.b'::regclass)
     UNION ALL SELECT conname::text FROM pg_constraint WHERE contype = 'f' AND conrelid = 'app.b'::regclass`,
  );
  return rows.map((r) => r.n).sort();
}

async function prepared(incremental: boolean) {
  const pair = await makePair();
  await pair.source.sql(SOURCE);
  const config = pair.config({ objects: { schemas: ['app'] }, mode: { schema: true, full: true, incremental } });
  const runToken = `run-${uid()}`;
  await claimDestination(config, runToken);
  await planSchema({ config, runToken });
  await applySchemaStage({ config, runToken, stage: 'before-data' });
  return { pair, config, runToken };
}

describe('keys and indexes built during the full load', () => {
  it('full-only: every index of a copied table, then the FK once both tables have their keys', async () => {
    const { pair, config, runToken } = await prepared(false);
    // b first: its FK waits because a has no keys yet; the destination records which tables have theirs.
    expect(await buildTableIndexes({ config, runToken, table: 'app.b' })).toEqual({ applied: 1, total: 1 });
    expect(await indexesAndFks(pair)).toEqual(['app.b_pkey']);
    const a = await buildTableIndexes({ config, runToken, table: 'app.a' });
    expect(a.applied).toBe(5); // a_pkey, a_code_key, a_v_idx, a_w_uidx, b_a_fk
    expect(await indexesAndFks(pair)).toEqual(['app.a_code_key', 'app.a_pkey', 'app.a_v_idx', 'app.a_w_uidx', 'app.b_pkey', 'b_a_fk']);
    // The post-data stages then find them built.
    expect(await applySchemaStage({ config, runToken, stage: 'keys' })).toMatchObject({ applied: 0, skipped: 2 });
    expect(await applySchemaStage({ config, runToken, stage: 'post-data' })).toMatchObject({ applied: 0, skipped: 4 });
  });

  it('two tables built side by side: the one marked built last applies the FK between them', async () => {
    const { pair, config, runToken } = await prepared(false);
    // b's build reads its statements (a has no keys yet: no FK), then waits for b's lock while a is built and marked.
    const holder = await session(config, 'destination', 'schema');
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE app.b IN ACCESS EXCLUSIVE MODE');
      const b = buildTableIndexes({ config, runToken, table: 'app.b' });
      await waitUntil(
        "b's build waits for the lock",
        async () =>
          (await pair.destination.sql(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%app%b%PRIMARY KEY%'`)).length > 0,
        { timeoutMs: 20_000, everyMs: 50 },
      );
      expect((await buildTableIndexes({ config, runToken, table: 'app.a' })).applied).toBe(4); // a's own: b is not built yet
      await holder.query('COMMIT');
      expect(await b).toEqual({ applied: 2, total: 2 }); // b_pkey, then b_a_fk once b is marked built
    } finally {
      await holder.end();
    }
    expect(await indexesAndFks(pair)).toEqual(['app.a_code_key', 'app.a_pkey', 'app.a_v_idx', 'app.a_w_uidx', 'app.b_pkey', 'b_a_fk']);
    expect(await applySchemaStage({ config, runToken, stage: 'post-data' })).toMatchObject({ applied: 0, skipped: 4 });
  });

  it('adds an FK NOT VALID and then checks it; a build stopped between the two checks it on its rerun', async () => {
    const { pair, config, runToken } = await prepared(false);
    await pair.destination.sql(`INSERT INTO app.a SELECT g, 'c' || g, g, g FROM generate_series(1, 100) g;
      INSERT INTO app.b SELECT g, g FROM generate_series(1, 100) g; INSERT INTO app.b VALUES (1000, 555)`);
    expect((await buildTableIndexes({ config, runToken, table: 'app.a' })).applied).toBe(4); // b is not built yet
    // A build of b that stopped after the first step: the FK is there, not valid (so no row was checked).
    await pair.destination.sql('ALTER TABLE app.b ADD CONSTRAINT b_a_fk FOREIGN KEY (a_id) REFERENCES app.a (id) NOT VALID');
    // The rerun checks every row: the orphan fails it, naming the FK.
    await expect(buildTableIndexes({ config, runToken, table: 'app.b' })).rejects.toThrow(/b_a_fk/);
    await pair.destination.sql('DELETE FROM app.b WHERE id = 1000');
    expect(await buildTableIndexes({ config, runToken, table: 'app.b' })).toEqual({ applied: 1, total: 2 }); // b_pkey was built by the failed run
    expect(await pair.destination.sql("SELECT convalidated AS valid FROM pg_constraint WHERE conname = 'b_a_fk'")).toEqual([{ valid: true }]);
    expect(await applySchemaStage({ config, runToken, stage: 'post-data' })).toMatchObject({ applied: 0, skipped: 4 });
  });

  it('with change capture: keys and plain indexes only; unique and FKs wait for the post-data stage', async () => {
    const { pair, config, runToken } = await prepared(true);
    await buildTableIndexes({ config, runToken, table: 'app.a' });
    await buildTableIndexes({ config, runToken, table: 'app.b' });
    expect(await indexesAndFks(pair)).toEqual(['app.a_pkey', 'app.a_v_idx', 'app.b_pkey']);
    expect(await applySchemaStage({ config, runToken, stage: 'post-data' })).toMatchObject({ applied: 3, skipped: 1 });
    expect(await indexesAndFks(pair)).toEqual(['app.a_code_key', 'app.a_pkey', 'app.a_v_idx', 'app.a_w_uidx', 'app.b_pkey', 'b_a_fk']);
  });
});
