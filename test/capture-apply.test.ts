// Change apply end to end on real clusters (PostgreSQL 15 → 18): the slot is
// created, the schema migrated and the tables copied by the full load while
// the source keeps writing; then applyChanges converges the destination to
// the source for every kind of change, value and transaction shape.
import { describe, expect, it } from 'vitest';
import { applyChanges, type ApplyBeat } from '../activities/capture/apply';
import { prepareSource } from '../activities/capture/prepare-source';
import { copyChunk } from '../activities/full-load/chunk';
import { applySchemaStage, planSchema } from '../activities/schema';
import { parseLsn } from '../lib/capture/lsn';
import type { ConfigInput } from '../lib/config';
import { planAllTables } from './harness/full-load';
import { capturePair, type CapturePair } from './harness/capture';
import { appliedLsn, expectSameRows, sourceInsertLsn } from './harness/capture-compare';

const big = (seed: string, n = 12) => `(SELECT string_agg(md5('${seed}' || g), '') FROM generate_series(1, ${n * 10}) g)`;

const SCHEMA = `
CREATE SCHEMA app;
CREATE TABLE app.wide (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, note text, body text, doc jsonb);
ALTER TABLE app.wide ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE app.wide ALTER COLUMN doc SET STORAGE EXTERNAL;
CREATE TABLE app.people (id int PRIMARY KEY, email text NOT NULL, name text);
CREATE UNIQUE INDEX people_email ON app.people (email);
CREATE TABLE app.vals (id int PRIMARY KEY, j json, jb jsonb, ts timestamp, tstz timestamptz, d date, f8 float8, f4 float4,
  b bit(8), vb varbit(20), num numeric, num2 numeric(40,20), iv interval, raw bytea, arr int[], txt text[], s text, c char(5), u uuid, big bigint);
CREATE TABLE app.parent (id int PRIMARY KEY, v text);
CREATE TABLE app.child (id int PRIMARY KEY, parent_id int REFERENCES app.parent (id), v text);
CREATE TABLE app.seqd (id bigserial PRIMARY KEY, v text);
CREATE TABLE app.bulk (id int PRIMARY KEY, v text, n int NOT NULL DEFAULT 0);
CREATE TABLE app.ukeyed (code text NOT NULL, v int, CONSTRAINT ukeyed_code UNIQUE (code));
CREATE TABLE app.composite (a int NOT NULL, b text NOT NULL, v text, PRIMARY KEY (a, b));
CREATE TABLE app.ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
CREATE TABLE app.ident2 (k text PRIMARY KEY, seq bigint GENERATED ALWAYS AS IDENTITY, v text);`;

/** Rows present before the slot: copied by the full load, then changed by the stream. */
const BEFORE = `
INSERT INTO app.wide SELECT g, 0, 'note ' || g, ${big('w')} || g, jsonb_build_object('k', ${big('d', 4)}) FROM generate_series(1, 20) g;
INSERT INTO app.people VALUES (1, 'a@x', 'Ann'), (2, 'b@x', 'Bob'), (3, 'c@x', 'Cy');
INSERT INTO app.parent VALUES (1, 'p1'), (2, 'p2'); INSERT INTO app.child VALUES (1, 1, 'c1'), (2, 2, 'c2');
INSERT INTO app.seqd (v) VALUES ('s1'), ('s2');
INSERT INTO app.ukeyed VALUES ('k1', 1), ('k2', 2);
INSERT INTO app.composite VALUES (1, 'x', 'old')`;

/** Written after the slot exists, while (and after) the full load copies. */
const DURING = `
UPDATE app.wide SET n = n + 1 WHERE id <= 10;
INSERT INTO app.wide VALUES (100, 0, 'new during copy', ${big('n')}, '{"a": 1}');
UPDATE app.people SET name = 'Ann 2' WHERE id = 1;
DELETE FROM app.wide WHERE id = 20`;

const AFTER = [
  // plain inserts with values at the edges of their types
  `INSERT INTO app.vals VALUES
    (1, '{"a": 1, "a": 2, "b": [1, 2.50]}', '{"z": 1, "a": [true, null]}', '2024-02-29 23:59:59.999999', '2000-01-01 00:00:00.000001+05:30',
     '0044-03-15 BC', 'NaN', '-0', B'10101010', B'1011', 12345678901234567890.123456789012345678901234567890, 'NaN',
     '1 year 2 mons 3 days 04:05:06.789012', '\\x00ff10', '{1,NULL,3}', '{"a\\"b","c,d",NULL,""}', E'tab\\there ''q'' \\\\ ünï', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 9223372036854775807),
    (2, '  {"spaces" :  true }  ', '{}', '4713-01-01 00:00:00 BC', 'infinity', 'infinity', 'Infinity', '1.17549435e-38', B'00000000', B'', '-0.000000000000000000001', 1e19,
     '-178000000 years', '\\x', '{}', '{}', '', 'abcde', '00000000-0000-0000-0000-000000000000', -9223372036854775808),
    (3, NULL, NULL, NULL, NULL, NULL, '4.9e-324', '3.4028235e38', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
  // non-TOAST updates of wide rows: the TOASTed body and doc are not sent and must stay intact
  `UPDATE app.wide SET n = n + 10, note = 'touched' WHERE id BETWEEN 1 AND 8`,
  // TOAST rewrites: new value, NULL, restored
  `UPDATE app.wide SET body = ${big('r')} WHERE id = 2`,
  `UPDATE app.wide SET body = NULL WHERE id = 3`,
  `UPDATE app.wide SET body = ${big('restored')} WHERE id = 3`,
  `UPDATE app.wide SET doc = NULL, n = 99 WHERE id = 4`,
  // deletes
  `DELETE FROM app.wide WHERE id IN (5, 19)`,
  // key changes: one carrying unchanged TOAST values, one with everything new, one chain in a transaction
  `UPDATE app.wide SET id = 1006 WHERE id = 6`,
  `UPDATE app.wide SET id = 1007, body = 'short now' WHERE id = 7`,
  `BEGIN; UPDATE app.wide SET id = 2008 WHERE id = 8; UPDATE app.wide SET n = n + 1 WHERE id = 2008; UPDATE app.wide SET id = 3008 WHERE id = 2008; COMMIT`,
  // primary keys swapped through a temporary key, TOAST unchanged
  `BEGIN; UPDATE app.wide SET id = -1 WHERE id = 9; UPDATE app.wide SET id = 9 WHERE id = 10; UPDATE app.wide SET id = 10 WHERE id = -1; COMMIT`,
  // two rows swapping a unique email through an intermediate value inside one transaction
  `BEGIN; UPDATE app.people SET email = 'tmp@x' WHERE id = 1; UPDATE app.people SET email = 'a@x' WHERE id = 2; UPDATE app.people SET email = 'b@x' WHERE id = 1; COMMIT`,
  // delete + re-insert of the same key, insert + update + delete inside one transaction
  `BEGIN; DELETE FROM app.people WHERE id = 3; INSERT INTO app.people VALUES (3, 'c2@x', 'Cy again'); INSERT INTO app.people VALUES (4, 'd@x', 'Di');
   UPDATE app.people SET name = 'Di 2' WHERE id = 4; INSERT INTO app.people VALUES (5, 'e@x', 'gone'); DELETE FROM app.people WHERE id = 5; COMMIT`,
  // unique-index key (no primary key): update, key change, delete
  `UPDATE app.ukeyed SET v = 10 WHERE code = 'k1'`,
  `UPDATE app.ukeyed SET code = 'k3' WHERE code = 'k2'`,
  `INSERT INTO app.ukeyed VALUES ('k4', 4); DELETE FROM app.ukeyed WHERE code = 'k1'`,
  `UPDATE app.composite SET b = 'y', v = 'new' WHERE a = 1; INSERT INTO app.composite VALUES (2, 'x', NULL)`,
  // a 10k-row transaction, then a 10k-row update of it
  `INSERT INTO app.bulk SELECT g, md5(g::text) FROM generate_series(1, 10000) g`,
  `UPDATE app.bulk SET n = n + 1, v = v || '!' WHERE id % 2 = 0`,
  // TRUNCATE … CASCADE and RESTART IDENTITY, then refill
  `TRUNCATE app.parent CASCADE`,
  `INSERT INTO app.parent VALUES (10, 'p10'); INSERT INTO app.child VALUES (10, 10, 'c10')`,
  `TRUNCATE app.seqd RESTART IDENTITY; INSERT INTO app.seqd (v) VALUES ('after truncate')`,
  // GENERATED ALWAYS identity columns, as key and as a plain column
  `INSERT INTO app.ident (v) VALUES ('i1'), ('i2'); INSERT INTO app.ident2 (k, v) VALUES ('a', 'x'), ('b', 'y')`,
  `UPDATE app.ident SET v = 'i1 changed' WHERE id = 1; UPDATE app.ident2 SET v = 'x changed' WHERE k = 'a'; DELETE FROM app.ident2 WHERE k = 'b'`,
  // value updates: float and bit edge values, json re-written
  `UPDATE app.vals SET f8 = '-Infinity', b = B'11110000', vb = B'1', j = '{"dup": 1, "dup": 2}' WHERE id = 3`,
];

const TABLES = [
  { source: 'app.wide', orderBy: 'id' },
  { source: 'app.people', orderBy: 'id' },
  { source: 'app.vals', orderBy: 'id' },
  { source: 'app.parent', orderBy: 'id' },
  { source: 'app.child', orderBy: 'id' },
  { source: 'app.seqd', orderBy: 'id' },
  { source: 'app.bulk', orderBy: 'id' },
  { source: 'app.ukeyed', orderBy: 'code' },
  { source: 'app.composite', orderBy: 'a, b' },
  { source: 'app.ident', orderBy: 'id' },
  { source: 'app.ident2', orderBy: 'k' },
];

/** Slot, schema and full load as the workflow runs them (post-data indexes after the copy). */
async function migrated(pair: CapturePair, overrides: Partial<ConfigInput>) {
  const config = pair.config({ objects: { schemas: ['app'] }, ...overrides });
  const { runToken } = pair;
  const prepared = await prepareSource({ config, runToken });
  await planSchema({ config, runToken });
  await applySchemaStage({ config, runToken, stage: 'before-data' });
  await applySchemaStage({ config, runToken, stage: 'keys' });
  return { config, prepared };
}

async function fullLoad(pair: CapturePair, config: ReturnType<CapturePair['config']>) {
  const planned = await planAllTables(config, pair.runToken);
  for (const t of planned) {
    for (const chunk of t.pending) {
      await copyChunk({ config, runToken: pair.runToken, table: t.key, chunk }, { current: async () => null });
    }
  }
}

describe('applyChanges', () => {
  it('converges the destination for every kind of change, value and transaction shape (15 → 18)', async () => {
    const pair = await capturePair();
    await pair.sourceAsRole(SCHEMA + ';' + BEFORE);
    const { config, prepared } = await migrated(pair, {});
    await pair.source.sql(DURING);
    await fullLoad(pair, config);
    await applySchemaStage({ config, runToken: pair.runToken, stage: 'post-data' });
    for (const sql of AFTER) await pair.source.sql(sql);
    const target = await sourceInsertLsn(pair.source);

    const beats: ApplyBeat[] = [];
    const t0 = Date.now();
    const r = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: target }, { onBeat: (b) => beats.push(b), tuning: { beatMs: 200 } });
    const ms = Date.now() - t0;
    expect(parseLsn(r.appliedLsn) >= parseLsn(target)).toBe(true);
    expect(await appliedLsn(config)).toBe(parseLsn(r.appliedLsn));
    expect(parseLsn(r.appliedLsn) > parseLsn(prepared.startLsn)).toBe(true);
    expect(r.replicaRole).toBe(true);
    expect(r.fallbacks).toBeGreaterThanOrEqual(1); // the unique email swap
    expect(r.partialImages).toBeGreaterThan(0); // TOAST values not sent
    console.log(
      `applied ${r.changes} changes in ${r.transactions} transactions in ${ms} ms (${Math.round(r.changes / (ms / 1000))} changes/s), ${r.statements} statements, ${r.fallbacks} fallbacks`,
    );

    for (const t of TABLES) {
      const { source, destination } = await expectSameRows(pair.source, pair.destination, t);
      expect(destination, t.source).toEqual(source);
    }
    // TOASTed values intact after the non-TOAST updates.
    const [toast] = await pair.source.sql<{ n: number }>(`SELECT count(*)::int AS n FROM app.wide WHERE length(body) > 3000`);
    expect(toast.n).toBeGreaterThan(10);

    // The slot is confirmed exactly at the applied position (commit end LSN), never past it.
    const [slot] = await pair.source.sql<{ c: string }>('SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = $1', [
      prepared.slotName,
    ]);
    expect(parseLsn(slot.c) <= parseLsn(r.appliedLsn)).toBe(true);

    // A restart resumes where it stopped: more changes, applied again from the stored position.
    await pair.source.sql(
      `UPDATE app.wide SET n = n + 100 WHERE id = 1; INSERT INTO app.people VALUES (6, 'f@x', 'Fay'); DELETE FROM app.bulk WHERE id <= 5000`,
    );
    const target2 = await sourceInsertLsn(pair.source);
    const r2 = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: target2 }, { onBeat: (b) => beats.push(b), tuning: { beatMs: 200 } });
    expect(r2.changes).toBe(5002);
    for (const t of TABLES) {
      const { source, destination } = await expectSameRows(pair.source, pair.destination, t);
      expect(destination, t.source).toEqual(source);
    }
    // Running on an idle source until cancelled: the heartbeat moves the position, lag stays small, cancel stops promptly.
    const idle: ApplyBeat[] = [];
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 3500);
    const t1 = Date.now();
    // Cancelled, it returns its result (nothing applied: no table changed) at a destination commit.
    const cancelled = await applyChanges({ config, runToken: pair.runToken }, { signal: abort.signal, onBeat: (b) => idle.push(b), tuning: { beatMs: 250 } });
    expect(Date.now() - t1).toBeLessThan(5000);
    expect(cancelled.changes).toBe(0);
    expect(await appliedLsn(config)).toBe(parseLsn(cancelled.appliedLsn));
    const lastBeat = idle.at(-1)!;
    expect(lastBeat.replicaRole).toBe(true);
    expect(lastBeat.lagSeconds).not.toBeNull();
    expect(lastBeat.lagSeconds!).toBeLessThan(3);
    expect(lastBeat.lagBytes!).toBeLessThan(64 * 1024);
    expect(parseLsn(lastBeat.appliedLsn) > parseLsn(r2.appliedLsn)).toBe(true);
    expect(await appliedLsn(config)).toBeGreaterThan(parseLsn(r2.appliedLsn));
    // Nothing of the cancelled run is left open on the destination.
    expect(
      await pair.destination.sql(`SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'pgshift apply%' AND datname = current_database()`),
    ).toHaveLength(0);
  });

  it('applies renames, name case and row filters: rows move into and out of the filter', async () => {
    const pair = await capturePair();
    await pair.sourceAsRole(`
      CREATE SCHEMA "Src App";
      CREATE TABLE "Src App"."Events" ("Id" int PRIMARY KEY, "Kind" text NOT NULL, payload text, big text);
      ALTER TABLE "Src App"."Events" ALTER COLUMN big SET STORAGE EXTERNAL;
      CREATE TABLE "Src App"."Plain" ("Id" int PRIMARY KEY, "Val" text);
      INSERT INTO "Src App"."Events" VALUES (1, 'shown', 'p1', NULL), (2, 'hidden', 'p2', NULL), (3, 'shown', 'p3', ${big('e3')}), (4, 'hidden', 'p4', ${big('e4')});
      INSERT INTO "Src App"."Plain" VALUES (1, 'one'), (2, 'two')`);
    const { config } = await migrated(pair, {
      objects: {
        schemas: ['Src App'],
        nameCase: 'lower',
        rename: { schemas: { 'Src App': 'app' }, tables: { '"Src App"."Events"': 'app.evts' }, columns: { '"Src App"."Events".payload': 'body_text' } },
        filters: { '"Src App"."Events"': `"Kind" <> 'hidden'` },
      },
    });
    await fullLoad(pair, config);
    expect(await pair.destination.sql('SELECT id FROM app.evts ORDER BY id')).toEqual([{ id: 1 }, { id: 3 }]);
    for (const sql of [
      `INSERT INTO "Src App"."Events" VALUES (5, 'shown', 'p5', NULL), (6, 'hidden', 'p6', NULL), (7, 'shown', 'p7', ${big('e7')})`,
      `UPDATE "Src App"."Events" SET "Kind" = 'hidden' WHERE "Id" = 1`, // out of the filter: deleted
      `UPDATE "Src App"."Events" SET "Kind" = 'shown' WHERE "Id" = 2`, // into it: inserted
      `UPDATE "Src App"."Events" SET "Kind" = 'shown' WHERE "Id" = 4`, // into it with its TOASTed value not sent: read from the source
      `UPDATE "Src App"."Events" SET payload = 'p3 changed' WHERE "Id" = 3`, // stays in, TOAST kept
      `UPDATE "Src App"."Events" SET "Kind" = 'hidden' WHERE "Id" = 7`, // out, TOAST not sent
      `UPDATE "Src App"."Events" SET payload = 'still hidden' WHERE "Id" = 6`, // stays out
      `DELETE FROM "Src App"."Events" WHERE "Id" = 5`,
      `UPDATE "Src App"."Plain" SET "Val" = 'uno' WHERE "Id" = 1; UPDATE "Src App"."Plain" SET "Id" = 20 WHERE "Id" = 2; INSERT INTO "Src App"."Plain" VALUES (3, 'three')`,
    ]) {
      await pair.source.sql(sql);
    }
    const r = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: await sourceInsertLsn(pair.source) });
    expect(r.sourceReads).toBeGreaterThanOrEqual(1);
    const events = await expectSameRows(pair.source, pair.destination, {
      source: '"Src App"."Events"',
      destination: 'app.evts',
      orderBy: '1',
      where: `"Kind" <> 'hidden'`,
    });
    expect(events.destination).toEqual(events.source);
    expect(events.destination.map((x) => x.slice(0, 12))).toEqual(['(2,shown,p2,', '(3,shown,"p3', '(4,shown,p4,']);
    const plain = await expectSameRows(pair.source, pair.destination, { source: '"Src App"."Plain"', destination: 'app.plain', orderBy: '1' });
    expect(plain.destination).toEqual(plain.source);
  });
});
