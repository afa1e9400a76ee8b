// The phase contract for open-ended phases: one long activity, cancelled and
// awaited before the run continues as new, and ended by the phase's own
// condition (a cutover). A test workflow (test/fixtures/workflows/open-ended.ts)
// runs the contract's runUntilStopped against a real Temporal server.
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { cutoverSignal, handOverSignal, OpenEndedPhaseWorkflow } from './fixtures/workflows/open-ended';
import { temporalClient, uid } from './harness/env';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
      const result = await worker.runUntil(async () => {
        const h = await client.workflow.start(OpenEndedPhaseWorkflow, { taskQueue, workflowId: `open-ended-${uid()}`, args: [{ runs: 1 }] });
        const until = async (cond: () => boolean) => {
          for (let i = 0; !cond(); i++) {
            if (i > 200) throw new Error('timed out');
            await sleep(50);
          }
        };
        await until(() => running.has(1));
        await h.signal(handOverSignal);
        await until(() => running.has(2));
        // The second run started only after the first run's activity had acknowledged.
        expect(log).toEqual(['run 1 started', 'run 1 acknowledged', 'run 2 started']);
        await h.signal(cutoverSignal);
        return h.result();
      });
      expect(result).toEqual({ outcome: 'done', run: 2 });
      expect(log).toEqual(['run 1 started', 'run 1 acknowledged', 'run 2 started', 'run 2 acknowledged']);
    } finally {
      await client.connection.close();
      await connection.close();
    }
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
      const result = await worker.runUntil(async () => {
        const h = await client.workflow.start(OpenEndedPhaseWorkflow, { taskQueue, workflowId: `open-ended-${uid()}`, args: [{ runs: 1 }] });
        const until = async (what: string, cond: () => boolean) => {
          for (let i = 0; !cond(); i++) {
            if (i > 400) throw new Error(`timed out waiting until ${what}`);
            await sleep(50);
          }
        };
        await until('run 1 started', () => log.includes('run 1 started'));
        await h.signal(handOverSignal);
        await until('run 2 started', () => log.includes('run 2 started'));
        await h.signal(cutoverSignal);
        return h.result();
      });
      expect(result).toEqual({ outcome: 'done', run: 2 });
      expect(log.slice(0, 2)).toEqual(['run 1 started', 'run 2 started']);
    } finally {
      await client.connection.close();
      await connection.close();
    }
  }, 60_000);
});
