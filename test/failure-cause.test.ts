// A failing schema statement: the operator reads which object, which
// statement and which SQLSTATE — in `pgshift status` (text and --json), in the
// workflow's current details and in the workflow's own failure — never the
// SDK's "Activity task failed".
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { createActivities } from '../activities';
import { startMigration, waitForMigration } from '../client';
import { claimDestination } from './fixtures/schema-source';
import { runCli } from './harness/cli';
import { makePair, temporalClient, uid, withWorker } from './harness/env';
import { recordHistories } from './harness/histories';

describe('root causes of failures', () => {
  it('a destination object in the way: status and the workflow failure name it, with its SQLSTATE', async () => {
    const pair = await makePair();
    await pair.source.sql("CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy'); CREATE TABLE public.t (id int PRIMARY KEY, m public.mood)");
    // Made on the destination beforehand, owned by the migration's role: the schema stage's CREATE TYPE collides with it.
    await pair.destination.sql(`CREATE TYPE public.mood AS ENUM ('x'); ALTER TYPE public.mood OWNER TO ${pair.destination.user}`);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({ taskQueue, mode: { schema: true, full: true, incremental: false } });
    const client = await temporalClient();
    const { err, json, text, details } = await withWorker(taskQueue, async () => {
      const id = await startMigration(client, config);
      const err = await waitForMigration(client, config.name).then(
        () => null,
        (e) => e,
      );
      const json = await runCli(['status', config.name, '--json']);
      const text = await runCli(['status', id]);
      // The workflow's current details (the markdown the Temporal UI shows), through the SDK's built-in metadata query.
      const details = (await client.workflow.getHandle(id).query<{ currentDetails?: string }>('__temporal_workflow_metadata')).currentDetails;
      return { err, json, text, details };
    });
    const cause = /enum public\.mood already exists on the destination \(type "mood" already exists \[42710\]\)/;

    expect(err).toBeInstanceOf(WorkflowFailedError);
    const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure.message).toMatch(cause);
    expect(failure.message).not.toMatch(/Activity task failed/);
    expect(failure.type).toBe('InvalidInput');
    expect(failure.nonRetryable).toBe(true);

    expect(json.code).toBe(1);
    const status = JSON.parse(json.stdout);
    expect(status.state.phase).toBe('failed');
    expect(status.state.errors).toEqual([
      expect.objectContaining({ phase: 'schema', activity: 'applySchemaStage', type: 'InvalidInput', message: expect.stringMatching(cause) }),
    ]);

    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/\*\*Failed in schema:\*\* enum public\.mood already exists on the destination/);
    expect(text.stdout).toMatch(cause);
    expect(text.stdout).not.toMatch(/Activity task failed/);

    expect(details).toMatch(cause);
    await recordHistories(client, `pgshift-${config.name}`, 'migration-schema-failed');
    await client.connection.close();
  });

  it('a statement the destination rejects: the failure names the object and the statement, with its SQLSTATE', async () => {
    const pair = await makePair();
    await pair.source.sql('CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY)');
    // The schema is there already (kept: existingTargetTables ignore), but the migration's role may not create in it.
    await pair.destination.sql('CREATE SCHEMA app');
    const config = pair.config({ mode: { schema: true, full: false, incremental: false }, objects: { schemas: ['app'] }, existingTargetTables: 'ignore' });
    const runToken = `run-${uid()}`;
    await claimDestination(config, runToken);
    const acts = createActivities();
    await acts.planSchema({ config, runToken });
    const err = await acts.applySchemaStage({ config, runToken, stage: 'before-data' }).catch((e) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.message).toMatch(/^table app\.t: permission denied for schema app \(statement \d+: CREATE TABLE "app"\."t" .*\) \[42501\]$/s);
    expect(err.type).toBe('OperationError');
  });
});
