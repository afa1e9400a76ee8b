// Cooperative cancellation: every long activity stops its statement as soon as
// Temporal cancels it. Each activity here is stuck on a lock held by the test
// (a long statement as far as it knows); the cancellation must end it within
// a couple of seconds, report it as cancelled, and leave no session behind.
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../activities';
import type { Config } from '../lib/config';
import { abort, getStatus, startMigration, waitForMigration } from '../client';
import { claimDestination } from './fixtures/schema-source';
import { makePair, temporalClient, uid, withWorker, type Pair } from './harness/env';
import { recordHistories } from './harness/histories';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const SOURCE = `CREATE TABLE public.t (id int PRIMARY KEY, v int);
  CREATE INDEX t_v_idx ON public.t (v);
  INSERT INTO public.t SELECT g, g FROM generate_series(1, 1000) g;
  CREATE SEQUENCE public.s; SELECT nextval('public.s')`;

/** pgshift sessions of the test database on the destination, and whether they wait for a lock. */
async function sessions(pair: Pair): Promise<{ app: string; waiting: boolean }[]> {
  return pair.destination.cluster.sql(
    `SELECT application_name AS app, wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'pgshift%'`,
    'postgres',
    [pair.name],
  );
}

describe('activities stop their statement when cancelled', () => {
  const acts = createActivities();
  let pair: Pair;
  let config: Config;
  let runToken: string;
  let blocker: Client;

  beforeAll(async () => {
    pair = await makePair();
    await pair.source.sql(SOURCE);
    config = pair.config({ mode: { schema: true, full: true, incremental: false } });
    runToken = `run-${uid()}`;
    await claimDestination(config, runToken);
    await acts.planSchema({ config, runToken });
    await acts.applySchemaStage({ config, runToken, stage: 'before-data' });
    await acts.planFullLoad({ config, runToken, after: null, pageChunks: 100, backlog: false });
    // Every statement the activities below run waits behind these locks: the table, and the run row every fenced write share-locks.
    blocker = await pair.destination.cluster.connect(pair.name);
    await blocker.query('BEGIN; LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE; SELECT 1 FROM pgshift.runs FOR UPDATE');
  });

  afterAll(async () => {
    await blocker?.query('ROLLBACK').catch(() => undefined);
    await blocker?.end();
  });

  const cases: [string, () => Promise<unknown>][] = [
    ['applySchemaStage (a primary key build)', () => acts.applySchemaStage({ config, runToken, stage: 'keys' })],
    ['buildTableIndexes', () => acts.buildTableIndexes({ config, runToken, table: 'public.t' })],
    ['analyzeTables', () => acts.analyzeTables({ config })],
    ['verifyTableData', () => acts.verifyTableData({ config, table: JSON.stringify(['public', 't']) })],
    ['syncSequences', () => acts.syncSequences({ config, runToken })],
  ];

  it.each(cases)('%s', async (_, run) => {
    const env = new MockActivityEnvironment();
    const running = env.run(run).then(
      () => 'completed',
      (e) => e,
    );
    for (let i = 0; !(await sessions(pair)).some((s) => s.waiting); i++) {
      if (i > 100) throw new Error('the activity never reached its statement');
      await sleep(100);
    }
    const t0 = Date.now();
    env.cancel();
    const outcome = await running;
    const took = Date.now() - t0;
    expect(outcome).toBeInstanceOf(CancelledFailure);
    expect(took).toBeLessThan(2_000);
    for (let i = 0; (await sessions(pair)).length && i < 20; i++) await sleep(100);
    expect(await sessions(pair)).toEqual([]);
  });
});

describe('abort during a long statement', () => {
  it('ends the migration within seconds and leaves no session of it', async () => {
    const pair = await makePair();
    const ddl = 'CREATE TABLE public.t (id int PRIMARY KEY, v int)';
    await pair.source.sql(`${ddl}; INSERT INTO public.t SELECT g, g FROM generate_series(1, 1000) g`);
    await pair.destination.sql(`${ddl}; GRANT ALL ON public.t TO ${pair.destination.user}`);
    // ANALYZE waits behind this lock for as long as the test holds it; the copy does not.
    const blocker = await pair.destination.cluster.connect(pair.name);
    await blocker.query('BEGIN; LOCK TABLE public.t IN SHARE UPDATE EXCLUSIVE MODE');
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: false, full: true, incremental: false },
      verification: { full: false, incremental: false, schema: false },
    });
    const client = await temporalClient();
    try {
      const { final, took } = await withWorker(taskQueue, async () => {
        await startMigration(client, config);
        for (let i = 0; !(await sessions(pair)).some((s) => s.waiting); i++) {
          if (i > 300) throw new Error('the migration never reached ANALYZE');
          await sleep(100);
        }
        expect((await getStatus(client, config.name)).state.phase).toBe('analyze');
        const t0 = Date.now();
        await abort(client, config.name);
        const final = await waitForMigration(client, config.name);
        return { final, took: Date.now() - t0 };
      });
      expect(final.state.phase).toBe('aborted');
      expect(took).toBeLessThan(10_000);
      expect(await sessions(pair)).toEqual([]);
      await recordHistories(client, final.workflowId, 'migration-aborted-during-analyze');
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
      await client.connection.close();
    }
  });
});
