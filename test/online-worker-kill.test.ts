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
import { expectOnlineTablesIdentical } from './fixtures/online-workload';
import { clusters, temporalClient, uid } from './harness/env';
import { sleep, waitUntil } from './harness/wait';
import { spawnWorker, type WorkerProcess } from './harness/worker-process';
import { onlineConfig, onlinePair, startWorkload, waitUntilApplied } from './harness/online';
import { workflowWaits } from './harness/outage';

const KILLS = 5;
const CAPTURE_PHASES = ['catch-up', 'post-data', 'sequences', 'analyze', 'verify', 'incremental'];

describe('online migration survives worker kills', () => {
  it('converges after 5 SIGKILLs during catch-up and incremental: no change applied twice or skipped; abort drops the slot', async () => {
    const cs = clusters();
    const pair = await onlinePair(cs.pg15, cs.pg18);
    const taskQueue = `tq-${uid()}`;
    const config = onlineConfig(pair, {
      taskQueue,
      mode: { schema: true, full: true, incremental: true },
      fullLoad: { chunkMb: 1 },
      parallelism: { tables: 2, indexes: 2 },
    });
    const client = await temporalClient();
    let worker: WorkerProcess = await spawnWorker(taskQueue);
    const workload = startWorkload(pair.source);
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
      const untilRound = workload.rounds() + 2;
      await waitUntil('two more workload rounds', async () => workload.rounds() >= untilRound, { timeoutMs: 60_000 });
    } finally {
      await workload.stop();
    }
    try {
      await waitUntilApplied(pair, config, 60_000, () => workflowWaits(client, config.name));
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
  }, 420_000);
});
