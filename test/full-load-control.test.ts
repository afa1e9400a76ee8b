// Operator controls during the full load: pause lets running chunks finish and
// starts no new one until resume; abort stops a copy mid-chunk, rolls it back,
// fences the destination and leaves no session behind.
import { describe, expect, it } from 'vitest';
import { abort, getStatus, pause, resume, startMigration, waitForMigration } from '../client';
import { EDGE_DATA, EDGE_DDL } from './fixtures/edge-values';
import { firstDifference, tableRows } from './harness/compare';
import { makePair, type Pair, temporalClient, uid, withWorker } from './harness/env';
import { sleep, waitUntil } from './harness/wait';
import { recordHistories } from './harness/histories';

const DDL = 'CREATE TABLE public.items (id int PRIMARY KEY, v text NOT NULL)';

async function setUp(rows: number) {
  const pair = await makePair();
  await pair.source.sql(`${DDL}; INSERT INTO public.items SELECT g, repeat('v', 200) FROM generate_series(1, ${rows}) g`);
  await pair.destination.sql(`${DDL}; GRANT ALL ON public.items TO ${pair.destination.user}`);
  return pair;
}

const doneChunks = async (pair: Pair) =>
  Number((await pair.destination.sql<{ n: string }>(`SELECT count(*) AS n FROM pgshift.chunks WHERE state = 'done'`).catch(() => [{ n: '0' }]))[0].n);

describe('full-load controls', () => {
  it('pause lets running chunks finish and starts none until resume', async () => {
    const pair = await setUp(40000);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: false, full: true, incremental: false },
      fullLoad: { chunkMb: 1 },
      parallelism: { tables: 1, indexes: 1 },
      throttle: { fullRowsPerSecond: 8000 },
    });
    const client = await temporalClient();
    await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      await waitUntil('the first chunk is copied', async () => (await doneChunks(pair)) >= 1);
      await pause(client, config.name);
      await sleep(3000); // the running chunk finishes
      const atPause = await doneChunks(pair);
      await sleep(3000);
      expect(await doneChunks(pair)).toBe(atPause);
      const s = await getStatus(client, config.name);
      expect(s.state.paused).toBe(true);
      expect(s.state.fullLoad!.activeCopies).toBe(0);
      const total = Number((await pair.destination.sql<{ n: string }>('SELECT count(*) AS n FROM pgshift.chunks'))[0].n);
      expect(atPause).toBeLessThan(total);
      await resume(client, config.name);
      expect((await waitForMigration(client, config.name)).state.phase).toBe('done');
      await recordHistories(client, `pgshift-${config.name}`, 'migration-paused-mid-copy');
    });
    const [a, b] = await Promise.all([tableRows(pair.source, 'public.items', 'id'), tableRows(pair.destination, 'public.items', 'id')]);
    expect(firstDifference(a, b)).toBeNull();
    await client.connection.close();
  });

  it('abort stops a copy mid-chunk promptly, rolls it back and fences the destination', async () => {
    const pair = await setUp(100000);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: false, full: true, incremental: false },
      throttle: { fullRowsPerSecond: 5000 },
    });
    const client = await temporalClient();
    await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      const copying = async () =>
        (
          await pair.destination.cluster.sql<{ n: string }>(
            `SELECT count(*) AS n FROM pg_stat_progress_copy p JOIN pg_database d ON d.oid = p.datid WHERE d.datname = $1`,
            'postgres',
            [pair.name],
          )
        )[0].n !== '0';
      await waitUntil('a COPY runs on the destination', copying);
      await sleep(1000);
      const t0 = Date.now();
      await abort(client, config.name);
      const final = await waitForMigration(client, config.name);
      const took = Date.now() - t0;
      expect(final.state.phase).toBe('aborted');
      expect(took).toBeLessThan(10_000);
      console.log(`abort took ${took} ms`);
      await recordHistories(client, final.workflowId, 'migration-aborted-mid-copy');
    });
    expect(await pair.destination.sql('SELECT count(*)::int AS n FROM public.items')).toEqual([{ n: 0 }]);
    expect(await pair.destination.sql('SELECT state FROM pgshift.runs')).toEqual([{ state: 'aborted' }]);
    const sessions = await pair.destination.cluster.sql(
      `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'pgshift%'`,
      'postgres',
      [pair.name],
    );
    expect(sessions).toEqual([]);
    // The source is untouched: no pgshift object there.
    expect(await pair.source.sql(`SELECT nspname FROM pg_namespace WHERE nspname = 'pgshift'`)).toEqual([]);
    await client.connection.close();
  });
});

describe('abort with abort.dropCreatedObjects', () => {
  it('drops what the migration created and nothing that was there before', async () => {
    const pair = await makePair();
    await pair.source.sql(EDGE_DDL + EDGE_DATA);
    await pair.destination.sql(`CREATE TABLE public.keep_me (id int PRIMARY KEY); GRANT ALL ON public.keep_me TO ${pair.destination.user}`);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: true, full: true, incremental: false },
      fullLoad: { chunkMb: 1 },
      parallelism: { tables: 1, indexes: 1 },
      throttle: { fullRowsPerSecond: 5000 },
      abort: { dropCreatedObjects: true },
    });
    const client = await temporalClient();
    const final = await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      await waitUntil('the first chunk is copied', async () => (await doneChunks(pair)) >= 1);
      await abort(client, config.name);
      return waitForMigration(client, config.name);
    });
    expect(final.state.phase).toBe('aborted');
    expect(final.state.abortCleanup!.kept).toEqual([]);
    expect(final.state.abortCleanup!.dropped).toEqual(expect.arrayContaining(['table public.bulk', 'enum public.mood', 'sequence public.counter']));
    const left = await pair.destination.sql<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'S') ORDER BY 1`,
    );
    expect(left).toEqual([{ name: 'keep_me' }]);
    expect(await pair.destination.sql(`SELECT typname FROM pg_type WHERE typname IN ('mood', 'pair')`)).toEqual([]);
    expect(await pair.destination.sql('SELECT state FROM pgshift.runs')).toEqual([{ state: 'aborted' }]);
    await client.connection.close();
  });
});
