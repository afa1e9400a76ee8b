// An online migration (15 → 18) run by `pgshift worker` child processes that
// are SIGKILLed at random points while the source writes — during the
// catch-up and the incremental phase — each replaced by a new worker. A killed
// apply round is retried elsewhere from the position committed on the
// destination: once the writes stop and the apply passes the source's last
// commit, the destination equals the source, and the workload's counters
// (customers.updates, docs.counter, kinds.updates) show that no change was
// applied twice or skipped. Abort then drops the slot.
import { describe, expect, it } from 'vitest';
import { abort, getStatus, startMigration, waitForMigration } from '../client';
import { parseLsn } from '../lib/capture/lsn';
import { expectOnlineTablesIdentical, ONLINE_DDL, ONLINE_SCHEMA, ONLINE_SEED, workloadRound } from './fixtures/online-workload';
import { capturePair } from './harness/capture';
import { appliedLsn, sourceInsertLsn } from './harness/capture-compare';
import { clusters, temporalClient, uid } from './harness/env';
import { sleep, waitUntil } from './harness/wait';
import { spawnWorker, type WorkerProcess } from './harness/worker-process';

const KILLS = 5;
const CAPTURE_PHASES = ['catch-up', 'post-data', 'sequences', 'analyze', 'verify', 'incremental'];

describe('online migration survives worker kills', () => {
  it('converges after 5 SIGKILLs during catch-up and incremental: no change applied twice or skipped; abort drops the slot', async () => {
    const cs = clusters();
    const pair = await capturePair({ source: cs.pg15, destination: cs.pg18 });
    await pair.sourceAsRole(ONLINE_DDL + ONLINE_SEED);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: true, full: true, incremental: true },
      objects: { schemas: [ONLINE_SCHEMA] },
      fullLoad: { chunkMb: 1 },
      parallelism: { tables: 2, indexes: 2 },
      acknowledgeWarnings: ['ddl-capture', 'wal-retention', 'replica-role', 'replica-identity'],
    });
    const client = await temporalClient();
    let worker: WorkerProcess = await spawnWorker(taskQueue);
    let round = 0;
    let writing = true;
    const workload = (async () => {
      while (writing) {
        await workloadRound(pair.source, ++round);
        await sleep(200);
      }
    })();
    const phase = async () => (await getStatus(client, config.name)).state.phase;
    try {
      await startMigration(client, config);
      await waitUntil('the apply lane runs (catch-up or later)', async () => CAPTURE_PHASES.includes(await phase()), { timeoutMs: 120_000, everyMs: 250 });
      const killedIn: string[] = [];
      for (let k = 0; k < KILLS; k++) {
        // A random point of a round: 5–10 s after the previous worker started.
        await sleep(5_000 + Math.random() * 5_000);
        killedIn.push(await phase());
        await worker.kill('SIGKILL');
        worker = await spawnWorker(taskQueue);
      }
      expect(killedIn.length).toBe(KILLS);
      expect(
        killedIn.every((p) => CAPTURE_PHASES.includes(p)),
        `phases of the kills: ${killedIn.join(', ')}`,
      ).toBe(true);
      await waitUntil('the migration reaches the incremental phase', async () => ['incremental', 'failed'].includes(await phase()), {
        timeoutMs: 60_000,
        everyMs: 500,
      });
      // More writes after the last kill, applied by the last worker.
      const untilRound = round + 2;
      await waitUntil('two more workload rounds', async () => round >= untilRound, { timeoutMs: 60_000 });
    } finally {
      writing = false;
      await workload;
    }
    try {
      const end = parseLsn(await sourceInsertLsn(pair.source));
      await waitUntil('the apply passes the source’s last commit', async () => (await appliedLsn(config)) >= end, { timeoutMs: 90_000, everyMs: 250 });
      await expectOnlineTablesIdentical(pair);
      const s = await getStatus(client, config.name);
      expect(s.state.phase).toBe('incremental');
      expect(s.state.errors).toEqual([]);
      expect(s.state.capture!.consistentAt).not.toBeNull();

      await abort(client, config.name);
      const final = await waitForMigration(client, config.name);
      expect(final.state.phase).toBe('aborted');
      expect(await pair.source.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [`pgshift_${config.name}`])).toEqual([]);
    } finally {
      await worker.kill('SIGTERM');
      await client.connection.close();
    }
  }, 300_000);
});
