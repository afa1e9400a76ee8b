// MigrationWorkflow as a state machine: phases, status query, search
// attributes, pause/resume, abort with fencing, precheck failure.
import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { fenced, FencedError } from '../activities/control';
import { getStatus, resume, startMigration, waitForMigration } from '../client';
import type { Config } from '../lib/config';
import { connect } from '../lib/io/pg';
import { MigrationWorkflow } from '../workflows';
import { abortSignal, pauseSignal } from '../workflows/migration';
import { makePair, temporalClient, uid, withWorker } from './harness/env';
import { recordHistories } from './harness/histories';

const noSchema = { mode: { schema: false, full: true, incremental: false } } as const;

/** A pair whose source has one table (an empty selection fails the precheck). */
async function pairWithTable() {
  const pair = await makePair();
  await pair.source.sql('CREATE TABLE public.t (id int PRIMARY KEY)');
  await pair.destination.sql(`CREATE TABLE public.t (id int PRIMARY KEY); GRANT ALL ON public.t TO ${pair.destination.user}`);
  return pair;
}

describe('MigrationWorkflow state machine', () => {
  it('runs the enabled phases, reports status and registers its fencing token', async () => {
    const pair = await pairWithTable();
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({ ...noSchema, taskQueue, environmentTag: 'test' });
    const client = await temporalClient();
    const final = await withWorker(taskQueue, async () => {
      const id = await startMigration(client, config);
      expect(id).toBe(`pgshift-${config.name}`);
      return waitForMigration(client, config.name);
    });
    expect(final.state.phase).toBe('done');
    expect(final.state.precheck?.length).toBeGreaterThan(1);
    const desc = await client.workflow.getHandle(final.workflowId).describe();
    const sa = Object.fromEntries(desc.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value]));
    expect(sa).toMatchObject({ PgshiftPhase: 'done', PgshiftEnvironment: 'test', PgshiftSource: final.source });
    const runs = await pair.destination.sql<{ run_token: string; state: string }>('SELECT run_token, state FROM pgshift.runs');
    expect(runs).toEqual([{ run_token: final.state.runToken, state: 'active' }]);
    await recordHistories(client, final.workflowId, 'migration-full-only');
    await client.connection.close();
  });

  it('stops on a failed precheck with a non-retryable error naming the item', async () => {
    const pair = await makePair();
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({ ...noSchema, taskQueue, source: { ...pair.raw().source, passwordEnv: 'PGSHIFT_TEST_NOT_SET' } });
    const client = await temporalClient();
    const err = await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      return waitForMigration(client, config.name).catch((e) => e);
    });
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String((err as WorkflowFailedError).cause?.message)).toMatch(
      /^precheck failed: source-connectivity \(fail\): source.passwordEnv: environment variable PGSHIFT_TEST_NOT_SET is not set/,
    );
    await recordHistories(client, `pgshift-${config.name}`, 'migration-precheck-failed');
    await client.connection.close();
  });

  it('pauses before the next phase, resumes, and abort fences the destination', async () => {
    const pair = await pairWithTable();
    const client = await temporalClient();
    const paused = async (config: Config) => {
      const h = await client.workflow.signalWithStart(MigrationWorkflow, {
        taskQueue: config.taskQueue,
        workflowId: `pgshift-${config.name}-${uid()}`,
        args: [{ config }],
        signal: pauseSignal,
        signalArgs: [],
      });
      await new Promise((r) => setTimeout(r, 1500));
      return h;
    };
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({ ...noSchema, taskQueue });
    await withWorker(taskQueue, async () => {
      // pause → nothing runs; resume → runs to the end
      const h = await paused(config);
      const s = await getStatus(client, h.workflowId);
      expect(s.state).toMatchObject({ paused: true, phase: 'precheck', precheck: null });
      const history = await h.fetchHistory();
      expect(history.events!.some((e) => e.activityTaskScheduledEventAttributes)).toBe(false);
      await resume(client, h.workflowId);
      expect((await h.result()).state.phase).toBe('done');
      await recordHistories(client, h.workflowId, 'migration-paused-resumed');

      // a run that aborts: fenced afterwards, even for its own token
      const h2 = await paused(config);
      await h2.signal(abortSignal);
      const r2 = await h2.result();
      expect(r2.state.phase).toBe('aborted');
      await recordHistories(client, h2.workflowId, 'migration-aborted-while-paused');
      const runs = await pair.destination.sql<{ state: string }>('SELECT state FROM pgshift.runs');
      expect(runs).toEqual([{ state: 'aborted' }]);
      const c = await connect(config, 'destination');
      try {
        const token = (await h.result()).state.runToken;
        await expect(fenced(c, config.name, token, async () => c.query('SELECT 1'))).rejects.toBeInstanceOf(FencedError);
      } finally {
        await c.end();
      }
    });
    await client.connection.close();
  });
});
