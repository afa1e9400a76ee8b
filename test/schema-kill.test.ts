// Schema-only migration through the workflow, with the worker SIGKILLed while
// a stage is half applied: a new worker finishes it, every statement applied
// exactly once, no duplicate object on the destination.
import { describe, expect, it } from 'vitest';
import { getStatus, startMigration, waitForMigration } from '../client';
import { makePair, temporalClient, uid } from './harness/env';
import { spawnWorker } from './harness/worker-process';
import { waitUntil } from './harness/wait';

const TABLES = 300;
const SOURCE = `
CREATE SCHEMA wide;
DO $$ BEGIN
  FOR i IN 1..${TABLES} LOOP
    EXECUTE format('CREATE TABLE wide.t%s (id int PRIMARY KEY, a text, b int, c timestamptz DEFAULT now())', i);
    EXECUTE format('CREATE INDEX ON wide.t%s (b)', i);
    EXECUTE format('COMMENT ON TABLE wide.t%s IS %L', i, 'table ' || i);
  END LOOP;
END $$;`;

const counts = `SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'wide')::int AS relations,
                       (SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'wide' AND c.contype <> 'n')::int AS constraints, -- PG 18 also records NOT NULL as constraints
                       (SELECT count(*) FROM pg_description d JOIN pg_class c ON c.oid = d.objoid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'wide')::int AS comments`;

describe('schema-only migration survives a worker kill', () => {
  it('finishes after SIGKILL mid-stage without errors or duplicates', async () => {
    const pair = await makePair();
    await pair.source.sql(SOURCE);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: true, full: false, incremental: false },
      objects: { schemas: ['wide'] },
      verification: { full: false, incremental: false, schema: true },
    });
    const client = await temporalClient();
    const w1 = await spawnWorker(taskQueue);
    await startMigration(client, config);
    const applied = async () =>
      Number(
        (await pair.destination.sql<{ n: string }>(`SELECT count(*) AS n FROM pgshift.schema_statements WHERE state = 'applied'`).catch(() => [{ n: '0' }]))[0]
          .n,
      );
    await waitUntil('50 schema statements are applied', async () => (await applied()) >= 50, { everyMs: 50 });
    await w1.kill('SIGKILL');
    const atKill = await applied();
    const total = Number((await pair.destination.sql<{ n: string }>('SELECT count(*) AS n FROM pgshift.schema_statements'))[0].n);
    expect(atKill).toBeLessThan(total);

    const w2 = await spawnWorker(taskQueue);
    try {
      const final = await waitForMigration(client, config.name);
      expect(final.state.phase).toBe('done');
      const stages = Object.values(final.state.schema.stages);
      expect(stages.reduce((a, s) => a + s.applied + s.skipped, 0)).toBe(total);
      expect((await getStatus(client, config.name)).state.errors).toEqual([]);
      // Schema verification (schema-only mode runs it too): every table, column, key, index and comment matches.
      expect(final.state.schema.verification!.differences).toEqual([]);
      expect(final.state.schema.verification!.compared).toMatchObject({ table: TABLES, index: TABLES * 2 });
    } finally {
      await w2.kill('SIGTERM');
    }
    expect(await applied()).toBe(total);
    const [src] = await pair.source.sql(counts);
    const [dst] = await pair.destination.sql(counts);
    expect(dst).toEqual(src);
    await client.connection.close();
  });
});
