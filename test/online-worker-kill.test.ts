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
import { startTimeline } from './harness/timeline';
import { toWorkflowId } from '../lib/migration-ids';

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
    // A round every 2 s or so: the backlog that five heartbeat timeouts leave (one round is 10,000+ changes) is
    // still applied by the last worker in well under a minute, and the apply is busy with it at every kill.
    const workload = startWorkload(pair.source, { pauseMs: 2000 });
    const phase = async () => (await getStatus(client, config.name)).state.phase;
    const applyRunsOn = async (w: WorkerProcess) => {
      const d = await client.workflow.getHandle(toWorkflowId(config.name)).describe();
      // A worker's identity is pid@host: the round's last start was on this worker.
      return (d.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'applyChanges' && a.lastWorkerIdentity?.startsWith(`${w.child.pid}@`));
    };
    const { mark, text: timeline } = startTimeline();
    try {
      await startMigration(client, config);
      await waitUntil('the apply lane runs (catch-up or later)', async () => CAPTURE_PHASES.includes(await phase()), { timeoutMs: 120_000, everyMs: 250 });
      mark('apply lane runs');
      const killedIn: string[] = [];
      for (let k = 0; k < KILLS; k++) {
        // A random point of a round: 1–5 s after the apply (re)started on this worker (a kill before that
        // would only kill an idle worker: a killed round is retried once its heartbeat times out).
        await waitUntil('the apply runs on the new worker', () => applyRunsOn(worker), { timeoutMs: 90_000, everyMs: 250 });
        mark(`apply on worker ${k + 1} (workload round ${workload.rounds()})`);
        await sleep(1_000 + Math.random() * 4_000);
        killedIn.push(await phase());
        await worker.kill('SIGKILL');
        mark(`kill in ${killedIn.at(-1)}`);
        worker = await spawnWorker(taskQueue);
        mark('new worker polling');
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
      mark('incremental');
      await waitUntil('two more workload rounds', async () => workload.rounds() >= untilRound, { timeoutMs: 60_000 });
    } finally {
      await workload.stop();
      mark(`workload stopped after ${workload.rounds()} rounds`);
    }
    try {
      await waitUntilApplied(pair, config, 60_000, () => workflowWaits(client, config.name));
      mark('applied');
      await expectOnlineTablesIdentical(pair);
      mark('compared');
      const s = await getStatus(client, config.name);
      expect(s.state.phase).toBe('incremental');
      expect(s.state.errors).toEqual([]);
      expect(s.state.capture!.consistentAt).not.toBeNull();

      await abort(client, config.name);
      const final = await waitForMigration(client, config.name);
      expect(final.state.phase).toBe('aborted');
      expect(await pair.source.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [`pgshift_${config.name}`])).toEqual([]);
      mark('aborted');
    } finally {
      console.log(`worker-kill timeline: ${timeline()}`);
      await worker.kill('SIGTERM');
      await client.connection.close();
    }
  }, 420_000);
});
