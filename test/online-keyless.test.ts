// An online migration (15 → 18, through the workflow) of an append-only table
// without a key — an audit log with exact duplicate rows — beside a keyed
// one, with the primary-keys warning acknowledged. The source writes before
// the migration starts, during the full load (also between the slot's
// creation and the log's copy) and during the incremental phase, now and
// then updating or deleting one of several identical rows. Once the apply has
// passed the source's last commit, both sides hold the same multiset of rows,
// pgshift's verification agrees, and the catalogs show that the slot precedes
// every chunk's snapshot and that the copy held transactions the stream
// carried too (which the apply skipped).
import { describe, expect, it } from 'vitest';
import { abort, getStatus, startMigration, verify, waitForMigration } from '../client';
import { parseLsn } from '../lib/capture/lsn';
import { parseSnapshot } from '../lib/capture/snapshot';
import { capturePair, type CapturePair } from './harness/capture';
import { clusters, type Side, temporalClient, uid, withWorker } from './harness/env';
import { ONLINE_ACKNOWLEDGED, waitUntilApplied } from './harness/online';
import { sleep, waitUntil } from './harness/wait';

async function multiset(side: Side, table: string): Promise<string[]> {
  const r = await side.sql<{ r: string }>(`SELECT count(*) || ' × ' || t::text AS r FROM ${table} AS t GROUP BY t::text ORDER BY t::text`);
  return r.map((x) => x.r);
}

interface Txn {
  txid: bigint;
  /** The source's WAL insert position before the transaction began: its commit is after it. */
  before: bigint;
}

/** Small transactions on the log (two identical rows each, duplicates across transactions too), until stopped. */
function logWriter(pair: CapturePair) {
  const txns: Txn[] = [];
  let writing = true;
  let n = 0;
  const running = (async () => {
    const c = await pair.source.cluster.connect(pair.source.database);
    try {
      while (writing) {
        n++;
        const [{ lsn }] = (await c.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows;
        await c.query('BEGIN');
        const [{ x }] = (await c.query<{ x: string }>('SELECT txid_current()::text AS x')).rows;
        await c.query(`INSERT INTO app.log VALUES ($1, 'write', NULL), ($1, 'write', NULL)`, [n % 5]);
        if (n % 7 === 0)
          await c.query(`UPDATE app.log SET note = 'upd' WHERE ctid = (SELECT ctid FROM app.log WHERE k = $1 AND note IS NULL LIMIT 1)`, [n % 5]);
        if (n % 11 === 0) await c.query(`DELETE FROM app.log WHERE ctid = (SELECT ctid FROM app.log WHERE k = $1 LIMIT 1)`, [(n + 2) % 5]);
        if (n % 13 === 0) await c.query('UPDATE app.items SET n = n + 1 WHERE id = $1', [n % 100]);
        await c.query('COMMIT');
        txns.push({ txid: BigInt(x), before: parseLsn(lsn) });
        await sleep(20);
      }
    } finally {
      await c.end();
    }
  })();
  return {
    txns,
    count: () => n,
    stop: async () => {
      writing = false;
      await running;
    },
  };
}

describe('online migration of a table without key', () => {
  it('an append-only log with exact duplicates ends identical on both sides (15 → 18)', async () => {
    const cs = clusters();
    const pair = await capturePair({ source: cs.pg15, destination: cs.pg18 });
    await pair.sourceAsRole(`
      CREATE SCHEMA app;
      CREATE TABLE app.log (k int, who text, note text);
      CREATE TABLE app.items (id int PRIMARY KEY, n int NOT NULL, pad text);
      INSERT INTO app.log SELECT g % 5, 'seed', NULL FROM generate_series(1, 20000) g;
      INSERT INTO app.items SELECT g, 0, repeat('x', 200) FROM generate_series(1, 10000) g`);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      objects: { schemas: ['app'] },
      acknowledgeWarnings: [...(ONLINE_ACKNOWLEDGED ?? []), 'primary-keys'],
      mode: { schema: true, full: true, incremental: true },
      fullLoad: { chunkMb: 1 },
    });
    const client = await temporalClient();
    await withWorker(taskQueue, async () => {
      const writer = logWriter(pair);
      try {
        await waitUntil('a few writes before the start', async () => writer.count() >= 5);
        await startMigration(client, config);
        await waitUntil(
          'the migration reaches the incremental phase',
          async () => {
            const s = await getStatus(client, config.name);
            return ['incremental', 'failed'].includes(s.state.phase) && s;
          },
          { timeoutMs: 120_000, everyMs: 500 },
        ).then((s) => expect(s.state.errors, 'errors of the migration').toEqual([]));
        const more = writer.count() + 50;
        await waitUntil('50 more writes in the incremental phase', async () => writer.count() >= more, { timeoutMs: 30_000 });
      } finally {
        await writer.stop();
      }
      await waitUntilApplied(pair, config, 60_000);

      for (const t of ['app.log', 'app.items']) expect(await multiset(pair.destination, t), t).toEqual(await multiset(pair.source, t));
      const { result } = await verify(client, config.name, { data: true });
      expect(result.consistent).toBe(true);

      // From the catalogs: every chunk's snapshot was taken after the slot's consistent point (SPEC §3.1) …
      const chunks = await pair.destination.sql<{ table_key: string; snapshot: string; seen_before: string; after_slot: boolean; start: string }>(
        `SELECT c.table_key, c.snapshot, c.snapshot_max_lsn::text AS seen_before, c.snapshot_min_lsn >= k.start_lsn AS after_slot, k.start_lsn::text AS start
           FROM pgshift.chunks c JOIN pgshift.capture k USING (migration) WHERE c.migration = $1 ORDER BY c.table_key, c.chunk`,
        [config.name],
      );
      expect(chunks.every((c) => c.after_slot)).toBe(true);
      expect(chunks.filter((c) => c.table_key === '["app","items"]').length).toBeGreaterThan(1);
      const log = chunks.filter((c) => c.table_key === '["app","log"]');
      expect(log).toHaveLength(1);
      // … and the log's copy held transactions that committed after it, so the stream carried them too: skipped, not applied twice.
      const snap = parseSnapshot(log[0].snapshot, log[0].seen_before);
      const start = parseLsn(log[0].start);
      const both = writer.txns.filter((t) => t.before >= start && (t.txid < snap.xmin || (t.txid < snap.xmax && !snap.inProgress.has(t.txid))));
      expect(both.length).toBeGreaterThan(0);

      await abort(client, config.name);
      expect((await waitForMigration(client, config.name)).state.phase).toBe('aborted');
      expect(await pair.source.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [`pgshift_${config.name}`])).toEqual([]);
    });
    await client.connection.close();
  }, 180_000);
});
