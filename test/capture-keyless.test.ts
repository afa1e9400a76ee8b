// Tables without a usable key, made exact (15 → 18 and 11 → 14). Acknowledged, pgshift
// sets REPLICA IDENTITY FULL on them, copies each at one snapshot recorded
// with its done mark, skips the captured changes of transactions that
// snapshot saw, applies inserts as plain inserts and each update or delete to
// exactly one row equal to the old image — even among identical rows. Rows
// are compared as multisets (count of each row text), so a duplicated or lost
// row shows.
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { spawnApply } from './harness/apply-child';
import { applyChanges } from '../activities/capture/apply';
import { prepareSource } from '../activities/capture/prepare-source';
import { copyChunk } from '../activities/full-load/chunk';
import { applySchemaStage, planSchema } from '../activities/schema';
import type { Config, ConfigInput } from '../lib/config';
import { parseLsn } from '../lib/capture/lsn';
import { parseSnapshot, snapshotSaw, widenXid } from '../lib/capture/snapshot';
import { planAllTables } from './harness/full-load';
import { capturePair, type CapturePair } from './harness/capture';
import { appliedLsn, sourceInsertLsn } from './harness/capture-compare';
import { clusters, type Side } from './harness/env';
import { sleep, waitUntil } from './harness/wait';

const SETTINGS = "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 3";

/** Each distinct row text of `table` with how many times it occurs. */
async function multiset(side: Side, table: string): Promise<string[]> {
  const c = await side.cluster.connect(side.database);
  try {
    await c.query(SETTINGS);
    const r = await c.query<{ r: string }>(`SELECT count(*) || ' × ' || t::text AS r FROM ${table} AS t GROUP BY t::text ORDER BY t::text`);
    return r.rows.map((x) => x.r);
  } finally {
    await c.end();
  }
}

async function expectSameMultiset(pair: CapturePair, table: string): Promise<string[]> {
  const [a, b] = await Promise.all([multiset(pair.source, table), multiset(pair.destination, table)]);
  expect(b, `${table} on the destination`).toEqual(a);
  return a;
}

/** Copy every planned chunk (schema first), as the full load does. */
async function copyAll(config: Config, runToken: string): Promise<void> {
  await planSchema({ config, runToken });
  await applySchemaStage({ config, runToken, stage: 'before-data' });
  await applySchemaStage({ config, runToken, stage: 'keys' });
  for (const t of await planAllTables(config, runToken)) {
    for (const chunk of t.pending) await copyChunk({ config, runToken, table: t.key, chunk }, { current: async () => null });
  }
}

const keyless = (pair: CapturePair, overrides: Partial<ConfigInput> = {}) =>
  pair.config({ objects: { schemas: ['app'] }, acknowledgeWarnings: ['primary-keys'], fullLoad: { chunkMb: 1 }, ...overrides });

const SCHEMA = `
CREATE SCHEMA app;
-- an audit log: no key, exact duplicates; json and point have no equality operator
CREATE TABLE app.audit (at int, who text, note text, doc json, p point, f float8, big text);
ALTER TABLE app.audit ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE INDEX audit_at ON app.audit (at);
CREATE TABLE app.events (id int, v text);
CREATE TABLE app.items (id int PRIMARY KEY, n int NOT NULL, pad text)`;

const BEFORE = `
INSERT INTO app.audit SELECT g % 5, 'before', 'n', '{"a": 1, "a": 2}', '(1,2)', 0, NULL FROM generate_series(1, 300) g;
INSERT INTO app.audit SELECT 7, 'toast', 'n', NULL, NULL, NULL, (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i) FROM generate_series(1, 3);
INSERT INTO app.audit SELECT g, 'pad', 'n', NULL, NULL, NULL, repeat(md5(g::text), 40) FROM generate_series(100, 1100) g;
INSERT INTO app.events SELECT g % 3, 'e' FROM generate_series(1, 30) g;
INSERT INTO app.items SELECT g, 0, repeat('x', 60) FROM generate_series(1, 30000) g`;

/** Committed after the slot exists and before the copy: the copy holds all of it, the apply must add none of it. */
const WINDOW = [
  `INSERT INTO app.audit VALUES (1, 'before', 'n', '{"a": 1, "a": 2}', '(1,2)', 0, NULL), (1, 'before', 'n', '{"a": 1, "a": 2}', '(1,2)', 0, NULL)`,
  `UPDATE app.audit SET note = 'window' WHERE ctid = (SELECT ctid FROM app.audit WHERE at = 2 LIMIT 1)`,
  `DELETE FROM app.audit WHERE ctid = (SELECT ctid FROM app.audit WHERE at = 3 LIMIT 1)`,
  `TRUNCATE app.events`,
  `INSERT INTO app.events VALUES (1, 'after truncate'), (1, 'after truncate')`,
  `UPDATE app.items SET n = n + 1 WHERE id <= 10`,
];
/** Row changes of tables without key in WINDOW (the TRUNCATE is not a row change). */
const WINDOW_KEYLESS_ROWS = 2 + 1 + 1 + 2;

const AFTER = [
  // several identical rows: exactly one of them is updated, one deleted
  `UPDATE app.audit SET note = 'once' WHERE ctid = (SELECT ctid FROM app.audit WHERE at = 4 LIMIT 1)`,
  `DELETE FROM app.audit WHERE ctid = (SELECT ctid FROM app.audit WHERE at = 0 LIMIT 1)`,
  // unchanged TOAST value in the new image: it comes from the old image
  `UPDATE app.audit SET note = 'toast kept' WHERE ctid = (SELECT ctid FROM app.audit WHERE at = 7 LIMIT 1)`,
  // 0 and -0 are equal for float8's =, not the same row
  `INSERT INTO app.audit VALUES (50, 'zero', NULL, NULL, NULL, 0, NULL), (50, 'zero', NULL, NULL, NULL, '-0', NULL)`,
  `DELETE FROM app.audit WHERE at = 50 AND f::text = '-0'`,
  // json and point columns (no =), NULLs, one statement touching several identical rows
  `UPDATE app.audit SET p = '(3,4)', doc = '{"b": [1, 2]}' WHERE at = 1 AND who = 'before'`,
  `DELETE FROM app.audit WHERE at = 2 AND note = 'n'`,
  // a bigger transaction of plain inserts, mixed with a keyed table
  `INSERT INTO app.audit SELECT g % 7, 'bulk', 'n', NULL, NULL, g % 2, NULL FROM generate_series(1, 3000) g; UPDATE app.items SET n = n + 1 WHERE id % 100 = 0`,
  `TRUNCATE app.events; INSERT INTO app.events VALUES (2, 'refilled'), (2, 'refilled'), (3, NULL)`,
  `UPDATE app.events SET v = 'one of two' WHERE ctid = (SELECT ctid FROM app.events WHERE id = 2 LIMIT 1)`,
];

describe('which transactions a chunk snapshot saw', () => {
  // 64-bit txids in epoch 3; pgoutput gives the low 32 bits.
  const E = 3n << 32n;
  const snap = parseSnapshot(`${E + 100n}:${E + 110n}:${E + 100n},${E + 105n}`, '0/5000');
  it('follows PostgreSQL visibility: below xmin, or below xmax and not in progress', () => {
    expect(snapshotSaw(snap, 99, 0x1000n)).toBe(true);
    expect(snapshotSaw(snap, 100, 0x1000n)).toBe(false); // in progress
    expect(snapshotSaw(snap, 104, 0x1000n)).toBe(true);
    expect(snapshotSaw(snap, 105, 0x1000n)).toBe(false);
    expect(snapshotSaw(snap, 110, 0x1000n)).toBe(false); // xmax: started after
    // committed after the snapshot was taken: never seen, whatever the xid says
    expect(snapshotSaw(snap, 99, 0x5000n)).toBe(false);
  });
  it('puts a 32-bit xid in the epoch nearest the snapshot, across a wraparound', () => {
    const near = (3n << 32n) + 5n; // just after the epoch began
    expect(widenXid(0xfffffff0, near)).toBe((2n << 32n) + 0xfffffff0n);
    expect(widenXid(7, near)).toBe(near + 2n);
    const late = (3n << 32n) + 0xfffffff0n;
    expect(widenXid(3, late)).toBe((4n << 32n) + 3n);
    const wrapped = parseSnapshot(`${late - 10n}:${late + 20n}:`, '0/5000');
    expect(snapshotSaw(wrapped, Number((late - 20n) & 0xffffffffn), 0x10n)).toBe(true);
    expect(snapshotSaw(wrapped, 3, 0x10n)).toBe(true); // next epoch, still below xmax
    expect(snapshotSaw(wrapped, 4, 0x10n)).toBe(false); // xmax itself
  });
});

describe('tables without a key, exact', () => {
  it.each([
    [15, 18],
    [11, 14],
  ] as const)(
    'skips what the copy saw, applies the rest by whole-row image; the slot precedes every chunk snapshot; divergence stops it (%i → %i)',
    async (from, to) => {
      const cs = clusters();
      const pair = await capturePair({ source: from === 15 ? cs.pg15 : cs.pg11, destination: to === 18 ? cs.pg18 : cs.pg14 });
      await pair.sourceAsRole(SCHEMA + ';' + BEFORE);
      const config = keyless(pair);

      // Unacknowledged, prepare refuses the table (the precheck blocks before it).
      await expect(prepareSource({ config: pair.config({ objects: { schemas: ['app'] } }), runToken: pair.runToken })).rejects.toThrow(
        /app.audit has no PRIMARY KEY .* acknowledge the precheck warning primary-keys/,
      );
      const prepared = await prepareSource({ config, runToken: pair.runToken });
      expect(prepared.replicaIdentityFull).toEqual(['app.audit', 'app.events']);
      expect(
        await pair.source.sql(`SELECT relname, relreplident::text AS r FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relkind = 'r' ORDER BY 1`),
      ).toEqual([
        { relname: 'audit', r: 'f' },
        { relname: 'events', r: 'f' },
        { relname: 'items', r: 'd' },
      ]);
      // Idempotent: a retried prepare finds FULL in place.
      expect((await prepareSource({ config, runToken: pair.runToken })).replicaIdentityFull).toEqual([]);

      for (const sql of WINDOW) await pair.source.sql(sql);
      // Still open when the copy's snapshot is taken: not in the copy, applied from the stream.
      const open = await pair.source.cluster.connect(pair.source.database);
      await open.query(`BEGIN; INSERT INTO app.audit VALUES (1, 'before', 'n', '{"a": 1, "a": 2}', '(1,2)', 0, NULL)`);
      try {
        await copyAll(config, pair.runToken);
      } finally {
        await open.query('COMMIT');
        await open.end();
      }
      for (const sql of AFTER) await pair.source.sql(sql);

      // The catalogs prove the order: each chunk's snapshot was taken after the slot's consistent point (SPEC §3.1).
      const chunks = await pair.destination.sql<{ table_key: string; chunks: number; after_slot: boolean; recorded: boolean }>(
        `SELECT c.table_key, count(*)::int AS chunks, bool_and(c.snapshot_min_lsn >= k.start_lsn) AS after_slot,
              bool_and(c.snapshot IS NOT NULL AND c.snapshot_max_lsn >= c.snapshot_min_lsn) AS recorded
         FROM pgshift.chunks c JOIN pgshift.capture k USING (migration) WHERE c.migration = $1 GROUP BY 1 ORDER BY 1`,
        [config.name],
      );
      expect(chunks.map((c) => [c.table_key, c.after_slot, c.recorded])).toEqual([
        ['["app","audit"]', true, true],
        ['["app","events"]', true, true],
        ['["app","items"]', true, true],
      ]);
      // Tables without key in one chunk (one snapshot) however large; the keyed one in several.
      expect(chunks.map((c) => c.chunks)).toEqual([1, 1, expect.any(Number)]);
      expect(chunks[2].chunks).toBeGreaterThan(1);
      const [{ mb }] = await pair.source.sql<{ mb: number }>(`SELECT pg_table_size('app.audit') / 1048576.0 AS mb`);
      expect(Number(mb)).toBeGreaterThan(1);

      const target = await sourceInsertLsn(pair.source);
      const r = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: target });
      expect(r.keylessSkipped).toBe(WINDOW_KEYLESS_ROWS);
      for (const t of ['app.audit', 'app.events', 'app.items']) await expectSameMultiset(pair, t);
      const audit = await multiset(pair.destination, 'app.audit');
      expect(audit.filter((x) => x.includes(',once,'))).toEqual([expect.stringMatching(/^1 × /)]);
      expect(audit.find((x) => x.includes('zero'))).toMatch(/^1 × \(50,zero,,,,0,\)$/);

      // Again from the applied position: nothing is applied twice.
      const again = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: await sourceInsertLsn(pair.source) });
      expect(again.changes).toBe(0);
      await expectSameMultiset(pair, 'app.audit');

      // A row changed on the destination by hand: the next change to it finds no equal row and stops the apply.
      await pair.destination.sql(`DELETE FROM app.events WHERE v = 'one of two'`);
      await pair.source.sql(`UPDATE app.events SET v = 'gone' WHERE v = 'one of two'`);
      const failAt = await sourceInsertLsn(pair.source);
      const failed = applyChanges({ config, runToken: pair.runToken, stopAtLsn: failAt });
      await expect(failed).rejects.toThrow(/app.events \(no key\): no destination row equals the old row of a source UPDATE .*id = '2', v = 'one of two'/);
      await expect(failed).rejects.toSatisfy((e) => e instanceof ApplicationFailure && e.nonRetryable === true && e.type === 'Divergence');
      // Nothing of the failed transaction was committed.
      expect(await appliedLsn(config)).toBeLessThan(parseLsn(failAt));
      expect(await pair.destination.sql(`SELECT 1 FROM app.events WHERE v = 'gone'`)).toEqual([]);
    },
  );
});

describe('tables without a key, incremental-only', () => {
  it('applies every change after the slot to a destination that holds the rows already', async () => {
    const pair = await capturePair();
    const ddl = `CREATE SCHEMA app; CREATE TABLE app.log (k int, who text, note text);
      INSERT INTO app.log SELECT g % 3, 'seed', NULL FROM generate_series(1, 60) g`;
    await pair.sourceAsRole(ddl);
    await pair.destinationAsRole(ddl);
    const config = keyless(pair, { mode: { schema: false, full: false, incremental: true } });
    await prepareSource({ config, runToken: pair.runToken });
    for (const round of [1, 2, 3]) await logRound(pair.source, round);
    await pair.source.sql(`TRUNCATE app.log; INSERT INTO app.log VALUES (1, 'again', NULL), (1, 'again', NULL)`);
    await logRound(pair.source, 4);
    const r = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: await sourceInsertLsn(pair.source) });
    expect(r.keylessSkipped).toBe(0);
    expect(r.changes).toBeGreaterThan(500);
    await expectSameMultiset(pair, 'app.log');
  });
});

/** An append-only log with exact duplicates, and now and then an update or delete of one of several identical rows. */
async function logRound(source: Side, round: number): Promise<void> {
  const v = round % 4;
  await source.sql(`INSERT INTO app.log SELECT ${v}, 'r' || (g % 3), NULL FROM generate_series(1, 150) g`);
  for (let i = 0; i < 5; i++) await source.sql(`INSERT INTO app.log VALUES (${v}, 'single', NULL), (${v}, 'single', NULL)`);
  await source.sql(`UPDATE app.log SET note = 'upd ${round}' WHERE ctid = (SELECT ctid FROM app.log WHERE k = ${v} AND note IS NULL LIMIT 1)`);
  await source.sql(`DELETE FROM app.log WHERE ctid = (SELECT ctid FROM app.log WHERE k = ${(v + 1) % 4} AND who = 'single' LIMIT 1)`);
}

describe('tables without a key across crashes', () => {
  it('an append-only log with duplicates ends identical after the apply is SIGKILLed three times', async () => {
    const pair = await capturePair();
    await pair.sourceAsRole(`CREATE SCHEMA app; CREATE TABLE app.log (k int, who text, note text);
      INSERT INTO app.log SELECT g % 4, 'seed', NULL FROM generate_series(1, 500) g`);
    const config = keyless(pair);
    await prepareSource({ config, runToken: pair.runToken });
    await logRound(pair.source, 0); // between the slot and the copy
    await copyAll(config, pair.runToken);

    let stop = false;
    let rounds = 0;
    const workload = (async () => {
      while (!stop) {
        await logRound(pair.source, ++rounds);
        await sleep(100);
      }
    })();
    try {
      for (let kill = 0; kill < 3; kill++) {
        const before = await appliedLsn(config);
        const apply = spawnApply(config, pair.runToken);
        await waitUntil(`apply ${kill + 1} applies something (${apply.output()})`, async () => apply.alive() && (await appliedLsn(config)) > before, {
          timeoutMs: 30_000,
        });
        await sleep(100 + Math.floor(Math.random() * 400));
        expect(apply.alive(), apply.output()).toBe(true);
        await apply.kill();
      }
    } finally {
      stop = true;
      await workload;
    }
    expect(rounds).toBeGreaterThan(2);
    const r = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: await sourceInsertLsn(pair.source) });
    expect(parseLsn(r.appliedLsn) > 0n).toBe(true);
    const rows = await expectSameMultiset(pair, 'app.log');
    expect(rows.some((x) => !x.startsWith('1 × '))).toBe(true); // duplicates there are
  });
});
