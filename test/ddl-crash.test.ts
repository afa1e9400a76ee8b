// DDL replay exactly once across crashes (15 → 18, superuser source role): the
// apply runs in a child process SIGKILLed again and again while the source runs
// a DDL sequence (ADD COLUMN, RENAME COLUMN, ALTER TYPE, CREATE TABLE + rows,
// ADD COLUMN DEFAULT, CREATE INDEX, CHECK, DROP COLUMN, RENAME TABLE, DROP
// TABLE), each step between updates that increment a counter. An event trigger
// on the destination (ENABLE ALWAYS: it fires in the apply's replica sessions)
// logs every DDL command committed there with its transaction: a DDL replayed
// twice shows as the same statement in two transactions (or as a refused
// statement that stops the apply). At the end data, counters and catalogs are
// equal and schema verification is clean.
import { describe, expect, it } from 'vitest';
import { spawnApply } from './harness/apply-child';
import { applyChanges } from '../activities/capture/apply';
import { verifySchema } from '../activities/verify-schema';
import { parseLsn } from '../lib/capture/lsn';
import { migrateUpToApply } from './harness/full-load';
import { capturePair, type CapturePair } from './harness/capture';
import { appliedLsn, sourceInsertLsn, tableRows } from './harness/capture-compare';
import type { Side } from './harness/env';
import { sleep, waitUntil } from './harness/wait';

const SCHEMA = `
CREATE SCHEMA app;
CREATE TABLE app.items (id int PRIMARY KEY, qty int NOT NULL, name varchar(20), old text, n int NOT NULL DEFAULT 0);
CREATE TABLE app.gone (id int PRIMARY KEY, v text);
INSERT INTO app.items SELECT g, g, 'item ' || g, 'o', 0 FROM generate_series(1, 5000) g;
INSERT INTO app.gone VALUES (1, 'a')`;

const DDL = [
  `ALTER TABLE app.items ADD COLUMN color text`,
  `ALTER TABLE app.items RENAME COLUMN name TO title`,
  `ALTER TABLE app.items ALTER COLUMN qty TYPE bigint`,
  `CREATE TABLE app.fresh (id int PRIMARY KEY, v text, n int NOT NULL DEFAULT 0); INSERT INTO app.fresh (id, v) SELECT g, 'f' || g FROM generate_series(1, 500) g`,
  `ALTER TABLE app.items ADD COLUMN rank int NOT NULL DEFAULT 7`,
  `CREATE INDEX items_color ON app.items (color)`,
  `ALTER TABLE app.items ADD CONSTRAINT qty_positive CHECK (qty > 0)`,
  `ALTER TABLE app.items DROP COLUMN old`,
  `ALTER TABLE app.fresh RENAME TO fresher`,
  `DROP TABLE app.gone`,
];

/** Writes between two DDL: a counter incremented on a fifth of the rows, an insert, and the new table's counter once it exists. */
async function dml(source: Side, step: number, fresh: string | null) {
  await source.sql(`UPDATE app.items SET n = n + 1 WHERE id % 5 = ${step % 5}; INSERT INTO app.items (id, qty) VALUES (${10_000 + step}, ${step + 1})`);
  if (fresh) await source.sql(`UPDATE ${fresh} SET n = n + 1 WHERE id % 3 = ${step % 3}`);
}

async function migrated(pair: CapturePair) {
  const config = pair.config({ objects: { schemas: ['app'] } });
  await migrateUpToApply(config, pair.runToken);
  return config;
}

/** Columns, constraints (NOT NULL is in the columns: 18 lists it as a constraint too, 15 does not) and indexes of the tables of schema app, as the server deparses them. */
async function catalog(side: Side) {
  return side.sql(`
    SELECT c.relname, (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END
                         || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY attnum)
                       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                       WHERE a.attrelid = c.oid AND attnum > 0 AND NOT attisdropped) AS columns,
           (SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname) FROM pg_constraint WHERE conrelid = c.oid AND contype <> 'n') AS constraints,
           (SELECT string_agg(regexp_replace(pg_get_indexdef(indexrelid), ' USING .*', ''), ', ' ORDER BY 1) FROM pg_index WHERE indrelid = c.oid) AS indexes
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'app' AND c.relkind = 'r' ORDER BY c.relname`);
}

describe('DDL replay across crashes', () => {
  it('SIGKILLed during a DDL sequence with writes: each DDL applied exactly once, data, counters and catalogs equal (15 → 18)', async () => {
    const pair = await capturePair({ sourceRoleOptions: 'SUPERUSER REPLICATION' });
    await pair.source.sql(SCHEMA);
    const config = await migrated(pair);
    await applyChanges({ config, runToken: pair.runToken, stopAtLsn: await sourceInsertLsn(pair.source) });
    // Every DDL command committed on the destination's app schema, with its transaction.
    await pair.destination.sql(`
      CREATE SCHEMA audit;
      CREATE TABLE audit.ddl (xid bigint NOT NULL, q text NOT NULL, tag text NOT NULL, obj text);
      CREATE FUNCTION audit.note() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
        BEGIN
          INSERT INTO audit.ddl SELECT txid_current(), current_query(), command_tag, object_identity FROM pg_event_trigger_ddl_commands()
           WHERE schema_name = 'app';
        END $$;
      CREATE EVENT TRIGGER audit_ddl ON ddl_command_end EXECUTE FUNCTION audit.note();
      ALTER EVENT TRIGGER audit_ddl ENABLE ALWAYS`);

    let done = false;
    let kills = 0;
    const steps = (async () => {
      await sleep(1_500);
      try {
        for (const [i, ddl] of DDL.entries()) {
          // At least three kills land inside the sequence however slow the machine (an apply child starts in seconds under load).
          await waitUntil('the kills keep pace with the DDL sequence', async () => kills >= Math.ceil((3 * i) / (DDL.length - 1)), { timeoutMs: 120_000 });
          // app.fresh is created by DDL 3 and renamed to app.fresher by DDL 8.
          await dml(pair.source, 2 * i, i <= 3 ? null : i <= 8 ? 'app.fresh' : 'app.fresher');
          await pair.source.sql(ddl);
          await dml(pair.source, 2 * i + 1, i < 3 ? null : i < 8 ? 'app.fresh' : 'app.fresher');
          await sleep(400);
        }
      } finally {
        done = true;
      }
    })();
    try {
      while (!done) {
        const before = await appliedLsn(config);
        const apply = spawnApply(config, pair.runToken);
        await waitUntil(`the apply applies something (${apply.output()})`, async () => done || !apply.alive() || (await appliedLsn(config)) > before, {
          timeoutMs: 30_000,
        });
        expect(apply.alive(), apply.output()).toBe(true);
        await sleep(100 + Math.floor(Math.random() * 600));
        await apply.kill();
        kills++;
      }
    } finally {
      done = true;
      await steps;
    }
    console.log(`${kills} SIGKILLs during the DDL sequence`);
    expect(kills).toBeGreaterThanOrEqual(3);
    const target = await sourceInsertLsn(pair.source);
    const r = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: target });
    expect(r.ddl?.blocked ?? null).toBeNull();
    expect(parseLsn(r.appliedLsn) >= parseLsn(target)).toBe(true);

    // No destination statement committed in two transactions; every DDL of the sequence is there.
    const twice = await pair.destination.sql(`SELECT q, count(DISTINCT xid)::int AS times FROM audit.ddl GROUP BY q HAVING count(DISTINCT xid) > 1`);
    expect(twice).toEqual([]);
    // One destination transaction per DDL of the sequence but DROP TABLE (whose command ddl_command_end does not list).
    const [xids] = await pair.destination.sql<{ n: number }>(`SELECT count(DISTINCT xid)::int AS n FROM audit.ddl`);
    expect(xids.n).toBe(DDL.length - 1);
    await pair.destination.sql(`DROP EVENT TRIGGER audit_ddl; DROP SCHEMA audit CASCADE`);

    for (const [t, key] of [
      ['app.items', 'id'],
      ['app.fresher', 'id'],
    ]) {
      expect(await tableRows(pair.destination, t, key), t).toEqual(await tableRows(pair.source, t, key));
    }
    // The counters (in the rows compared above) moved: every step's updates were applied once.
    const [counters] = await pair.source.sql<{ n: number }>(`SELECT sum(n)::int AS n FROM app.items WHERE id <= 5000`);
    expect(counters.n).toBe(1000 * 2 * DDL.length);
    expect(await pair.destination.sql(`SELECT to_regclass('app.gone') AS t`)).toEqual([{ t: null }]);
    expect(await catalog(pair.destination)).toEqual(await catalog(pair.source));
    expect((await verifySchema({ config })).differences).toEqual([]);
  }, 90_000);
});
