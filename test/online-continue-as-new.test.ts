// The incremental phase hands its state over to a new run (continue-as-new)
// again and again while the source writes: the round in flight is cancelled
// and awaited at a destination commit, the next run resumes from the position
// stored on the destination, and at the end nothing is lost or applied twice.
// Every run's history stays short. (Incremental-only, so the runs before the
// incremental phase are few; a small history limit forces the hand-overs, and
// no-op throttle signals make the history grow faster than 20-second apply
// rounds alone would.)
import type { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { abort, getStatus, throttle, waitForMigration } from '../client';
import { MigrationWorkflow } from '../workflows';
import { expectOnlineTablesIdentical } from './fixtures/online-workload';
import { clusters, temporalClient, uid, withWorker } from './harness/env';
import { sleep, waitUntil } from './harness/wait';
import { onlineConfig, onlinePair, startWorkload, waitUntilApplied } from './harness/online';

const N = 60;
/**
 * Events a run may add after the limit on its own: the apply's and the incremental verifier's rounds
 * each cancelled and awaited, the hand-over (or the abort's cleanup). Signals that come in meanwhile
 * add theirs on top (a slow machine takes longer to reach the round's next destination commit and
 * sees more of the test's no-op signals).
 */
const MARGIN = 24;
const EVENTS_PER_SIGNAL = 4;

/**
 * What a run added after the first workflow task that saw its history at the limit: the events by type,
 * and the signals among them (each one brings its own workflow task, up to 4 events, however fast the hand-over).
 */
function afterLimit(history: temporal.api.history.v1.IHistory): { signals: number; text: string } {
  const events = history.events ?? [];
  const at = events.findIndex((e) => Number(e.eventId) >= N && e.workflowTaskCompletedEventAttributes);
  if (at < 0) return { signals: 0, text: 'never reached' };
  const counts = new Map<string, number>();
  for (const e of events.slice(at + 1)) {
    const type =
      Object.keys(e)
        .find((k) => k.endsWith('EventAttributes') && e[k as keyof typeof e])
        ?.replace(/EventAttributes$/, '') ?? '?';
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  return { signals: counts.get('workflowExecutionSignaled') ?? 0, text: [...counts].map(([t, n]) => `${t} ${n}`).join(', ') };
}

describe('continue-as-new in the incremental phase', () => {
  it('hands over across several runs while writes flow: nothing lost, every run’s history short', async () => {
    const cs = clusters();
    const pair = await onlinePair(cs.pg15, cs.pg18, { destinationHasData: true });
    const taskQueue = `tq-${uid()}`;
    const config = onlineConfig(pair, {
      taskQueue,
      mode: { schema: false, full: false, incremental: true },
    });
    const client = await temporalClient();
    const workflowId = `pgshift-${config.name}`;
    await withWorker(taskQueue, async () => {
      await client.workflow.start(MigrationWorkflow, { taskQueue, workflowId, args: [{ config, continueAsNewAtHistoryLength: N }] });
      const status = () => getStatus(client, config.name);
      await waitUntil('the slot exists', async () => (await status()).state.capture, { timeoutMs: 60_000 });
      const workload = startWorkload(pair.source);
      // No-op signals: each adds a few events to the history. Not too often: a hand-over cancels the round in
      // flight and a cancelled round reports nothing to the workflow, so a run must last longer than one
      // 20-second round for the catch-up to see the consistency point passed.
      let nudge = true;
      const nudging = (async () => {
        while (nudge) {
          await throttle(client, workflowId, {}).catch(() => undefined);
          await sleep(2000);
        }
      })();
      let atIncremental: number;
      try {
        const s = await waitUntil('the incremental phase', async () => ((s) => ['incremental', 'failed'].includes(s.state.phase) && s)(await status()), {
          timeoutMs: 90_000,
          everyMs: 250,
        });
        expect(s.state.errors).toEqual([]);
        atIncremental = s.state.generation;
        await waitUntil('three hand-overs in the incremental phase', async () => ((s) => s.state.generation >= atIncremental + 3 && s)(await status()), {
          timeoutMs: 120_000,
          everyMs: 500,
        });
      } finally {
        nudge = false;
        await Promise.all([workload.stop(), nudging]);
      }
      await waitUntilApplied(pair, config, 90_000);
      await expectOnlineTablesIdentical(pair);

      const s = await status();
      expect(s.state.errors).toEqual([]);
      expect(s.state.phase).toBe('incremental');
      expect(s.state.generation).toBeGreaterThanOrEqual(atIncremental + 3);
      expect(s.state.capture!.rounds).toBeGreaterThan(0); // rounds cut short by a hand-over report nothing
      expect(workload.rounds()).toBeGreaterThan(3);

      await abort(client, config.name);
      const final = await waitForMigration(client, config.name);
      expect(final.state.phase).toBe('aborted');
      const runs: { runId: string; length: number; start: number }[] = [];
      for await (const wf of client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
        runs.push({ runId: wf.runId, length: wf.historyLength, start: wf.startTime.getTime() });
      runs.sort((a, b) => a.start - b.start);
      expect(runs.length).toBe(final.state.generation + 1);
      const tails = await Promise.all(runs.map(async (r) => afterLimit(await client.workflow.getHandle(workflowId, r.runId).fetchHistory())));
      const report = runs.map((r, i) => `run ${i}: ${r.length} events; after the limit: ${tails[i].text}`).join('\n');
      console.log(report);
      for (const [i, r] of runs.entries()) expect(r.length, report).toBeLessThanOrEqual(N + MARGIN + EVENTS_PER_SIGNAL * tails[i].signals);
      expect(await pair.source.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [`pgshift_${config.name}`])).toEqual([]);
    });
    await client.connection.close();
  });
});
