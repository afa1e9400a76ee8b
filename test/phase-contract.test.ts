// The phase contract for open-ended phases: one long activity, cancelled and
// awaited before the run continues as new, and ended by the phase's own
// condition (a cutover). A test workflow (test/fixtures/workflows/open-ended.ts)
// runs the contract's runUntilStopped against a real Temporal server.
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { cutoverSignal, handOverSignal, OpenEndedPhaseWorkflow } from './fixtures/workflows/open-ended';
import { temporalClient, uid } from './harness/env';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A worker of the open-ended test workflow with `activities`, running `fn` (given a started workflow's handle). */
async function withOpenEndedWorkflow<T>(
  activities: { follow(run: number): Promise<string> },
  fn: (h: WorkflowHandle<typeof OpenEndedPhaseWorkflow>) => Promise<T>,
): Promise<T> {
  const t = inject('temporal');
  const taskQueue = `tq-${uid()}`;
  const connection = await NativeConnection.connect({ address: t.address });
  const client = await temporalClient();
  try {
    const worker = await Worker.create({
      connection,
      namespace: t.namespace,
      taskQueue,
      workflowsPath: path.join(__dirname, 'fixtures', 'workflows', 'open-ended.ts'),
      activities,
      maxHeartbeatThrottleInterval: '1s',
      defaultHeartbeatThrottleInterval: '1s',
    });
    return await worker.runUntil(async () =>
      fn(await client.workflow.start(OpenEndedPhaseWorkflow, { taskQueue, workflowId: `open-ended-${uid()}`, args: [{ runs: 1 }] })),
    );
  } finally {
    await client.connection.close();
    await connection.close();
  }
}

/** Poll `cond` every 50 ms for up to `ms`. */
async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !cond();) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

describe('open-ended phase contract', () => {
  it('cancels the long activity and waits for it before continuing as new; a cutover ends it', async () => {
    const log: string[] = [];
    const running = new Set<number>();
    const activities = {
      async follow(run: number): Promise<string> {
        running.add(run);
        log.push(`run ${run} started`);
        const ctx = Context.current();
        const beat = setInterval(() => ctx.heartbeat(), 200);
        try {
          await ctx.cancelled;
          return 'never';
        } catch (err) {
          // Cleanup that takes a while: the workflow must wait for it.
          await sleep(1500);
          log.push(`run ${run} acknowledged`);
          throw err instanceof CancelledFailure ? err : new CancelledFailure('cancelled');
        } finally {
          clearInterval(beat);
          running.delete(run);
        }
      },
    };
    const result = await withOpenEndedWorkflow(activities, async (h) => {
      await until('run 1 started', () => running.has(1));
      await h.signal(handOverSignal);
      await until('run 2 started', () => running.has(2));
      // The second run started only after the first run's activity had acknowledged.
      expect(log).toEqual(['run 1 started', 'run 1 acknowledged', 'run 2 started']);
      await h.signal(cutoverSignal);
      return h.result();
    });
    expect(result).toEqual({ outcome: 'done', run: 2 });
    expect(log).toEqual(['run 1 started', 'run 1 acknowledged', 'run 2 started', 'run 2 acknowledged']);
  });

  it('goes on as after a cancellation when the cancelled activity times out instead of acknowledging (Temporal reports "cancel requested")', async () => {
    // A cancellation that never reaches the worker in time (Temporal restarted, the worker stalled):
    // the activity stops heartbeating, the server times it out and does not retry it because its
    // cancellation was requested. The workflow must treat that as the stop it asked for, not fail.
    const log: string[] = [];
    const activities = {
      async follow(run: number): Promise<string> {
        log.push(`run ${run} started`);
        const ctx = Context.current();
        const beat = setInterval(() => ctx.heartbeat(), 200);
        try {
          await ctx.cancelled;
          return 'never';
        } catch {
          if (run > 1) throw new CancelledFailure('cancelled');
          clearInterval(beat);
          // Silent past the 5 s heartbeat timeout: the server gives up on the attempt first.
          await sleep(8000);
          log.push(`run ${run} gave up`);
          throw new CancelledFailure('cancelled');
        } finally {
          clearInterval(beat);
        }
      },
    };
    const result = await withOpenEndedWorkflow(activities, async (h) => {
      await until('run 1 started', () => log.includes('run 1 started'));
      await h.signal(handOverSignal);
      await until('run 2 started', () => log.includes('run 2 started'), 20_000);
      await h.signal(cutoverSignal);
      return h.result();
    });
    expect(result).toEqual({ outcome: 'done', run: 2 });
    expect(log.slice(0, 2)).toEqual(['run 1 started', 'run 2 started']);
  }, 60_000);
});
