// Exactly once across crashes: the apply runs in a child process that is
// SIGKILLed mid-stream again and again while the source runs the online
// workload (every update increments a counter). A destination trigger that
// fires even in replica mode logs every (row, counter) image applied: a change
// applied twice shows as a duplicate, a change skipped as a wrong final value.
import { describe, expect, it } from 'vitest';
import { spawnApply } from './harness/apply-child';
import { applyChanges } from '../activities/capture/apply';
import { prepareSource } from '../activities/capture/prepare-source';
import { formatLsn, parseLsn } from '../lib/capture/lsn';
import { decodePgoutput } from '../lib/capture/pgoutput';
import { expectOnlineTablesIdentical, ONLINE_DDL, ONLINE_SCHEMA, ONLINE_SEED, workloadRound } from './fixtures/online-workload';
import { migrateUpToApply } from './harness/full-load';
import { capturePair, type CapturePair } from './harness/capture';
import { appliedLsn, sourceInsertLsn } from './harness/capture-compare';
import { sleep, waitUntil } from './harness/wait';

async function migrated(pair: CapturePair) {
  const config = pair.config({ objects: { schemas: [ONLINE_SCHEMA] } });
  await migrateUpToApply(config, pair.runToken);
  return config;
}

describe('change apply across crashes', () => {
  it('SIGKILLed mid-stream four times: no change applied twice, none skipped (15 → 18)', async () => {
    const pair = await capturePair();
    await pair.sourceAsRole(ONLINE_DDL + ONLINE_SEED);
    const config = await migrated(pair);
    // Every image of a counter applied on the destination, even with session_replication_role = replica.
    await pair.destinationAsRole(`
      CREATE SCHEMA audit;
      CREATE TABLE audit.seen (tbl text NOT NULL, id bigint NOT NULL, n int NOT NULL);
      CREATE FUNCTION audit.note() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO audit.seen VALUES (TG_TABLE_NAME, NEW.id, (to_jsonb(NEW) ->> TG_ARGV[0])::int); RETURN NULL; END $$;
      CREATE TRIGGER note AFTER INSERT OR UPDATE ON shop.docs FOR EACH ROW EXECUTE FUNCTION audit.note('counter');
      CREATE TRIGGER note AFTER INSERT OR UPDATE ON shop.customers FOR EACH ROW EXECUTE FUNCTION audit.note('updates');
      ALTER TABLE shop.docs ENABLE ALWAYS TRIGGER note;
      ALTER TABLE shop.customers ENABLE ALWAYS TRIGGER note`);

    let stop = false;
    let rounds = 0;
    const workload = (async () => {
      while (!stop) {
        await workloadRound(pair.source, ++rounds);
        await sleep(250);
      }
    })();
    try {
      for (let kill = 0; kill < 4; kill++) {
        const before = await appliedLsn(config);
        const apply = spawnApply(config, pair.runToken);
        await waitUntil(`apply ${kill + 1} applies something (${apply.output()})`, async () => apply.alive() && (await appliedLsn(config)) > before, {
          timeoutMs: 30_000,
        });
        await sleep(100 + Math.floor(Math.random() * 500));
        expect(apply.alive(), apply.output()).toBe(true);
        await apply.kill();
      }
    } finally {
      stop = true;
      await workload;
    }
    expect(rounds).toBeGreaterThan(3);
    const target = await sourceInsertLsn(pair.source);
    const r = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: target });
    expect(parseLsn(r.appliedLsn) >= parseLsn(target)).toBe(true);

    await expectOnlineTablesIdentical(pair);
    const twice = await pair.destination.sql(`SELECT tbl, id, n, count(*)::int AS times FROM audit.seen GROUP BY 1, 2, 3 HAVING count(*) > 1 LIMIT 5`);
    expect(twice).toEqual([]);
    const [seen] = await pair.destination.sql<{ n: number }>('SELECT count(*)::int AS n FROM audit.seen');
    expect(seen.n).toBeGreaterThan(100);
  });

  it('applies both of two back-to-back commits with a restart between them', async () => {
    const pair = await capturePair();
    await pair.sourceAsRole('CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text)');
    const config = pair.config({ objects: { schemas: ['app'] } });
    await prepareSource({ config, runToken: pair.runToken });
    await pair.destinationAsRole('CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text)');

    // B's row is written before A commits, so B's commit record can directly follow A's. Other
    // databases of the cluster write WAL too: retry until the two commits are adjacent in the WAL.
    const a = await pair.source.cluster.connect(pair.source.database);
    const b = await pair.source.cluster.connect(pair.source.database);
    const peek = await pair.source.cluster.connect(pair.source.database);
    let adjacent: { idA: number; idB: number; endA: string } | undefined;
    try {
      for (let attempt = 0; attempt < 10 && !adjacent; attempt++) {
        const idA = 2 * attempt + 1;
        // synchronous_commit on: the commits are flushed, so decoding (which stops at the flushed WAL) sees them.
        await a.query(`SET synchronous_commit = on; BEGIN; INSERT INTO app.t VALUES (${idA}, 'a')`);
        await b.query(`SET synchronous_commit = on; BEGIN; INSERT INTO app.t VALUES (${idA + 1}, 'b')`);
        await a.query('COMMIT');
        await b.query('COMMIT');
        // Peeking decodes without consuming: the commit message's position is its commit end LSN.
        const changes = await peek.query<{ lsn: string; data: Buffer }>(
          `SELECT lsn::text AS lsn, data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`,
          [`pgshift_${config.name}`, `pgshift_${config.name}`],
        );
        const msgs = changes.rows.map((r) => ({ lsn: r.lsn, msg: decodePgoutput(r.data) }));
        const commits = msgs.filter((m) => m.msg.tag === 'commit');
        const begins = msgs.filter((m) => m.msg.tag === 'begin');
        const endA = (commits.at(-2)!.msg as { endLsn: bigint }).endLsn;
        const finalB = (begins.at(-1)!.msg as { finalLsn: bigint }).finalLsn;
        if (finalB === endA) adjacent = { idA, idB: idA + 1, endA: formatLsn(endA) };
      }
      expect(adjacent, 'two adjacent commits').toBeDefined();
      const { idA, idB, endA } = adjacent!;

      const first = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: endA });
      expect(first.appliedLsn).toBe(endA);
      const ids = async () => (await pair.destination.sql<{ id: number }>('SELECT id FROM app.t ORDER BY id')).map((r) => r.id);
      expect((await ids()).at(-1)).toBe(idA);
      // The slot is confirmed at A's commit end exactly: one byte more and the source would skip B on restart.
      const [slot] = await pair.source.sql<{ c: string }>(`SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = $1`, [
        `pgshift_${config.name}`,
      ]);
      expect(slot.c).toBe(endA);

      const second = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: await sourceInsertLsn(pair.source) });
      expect(second.changes).toBe(1);
      expect((await ids()).at(-1)).toBe(idB);
      expect(await ids()).toEqual(Array.from({ length: idB }, (_, i) => i + 1));
    } finally {
      await a.end();
      await b.end();
      await peek.end();
    }
  });
});
