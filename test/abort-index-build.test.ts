// Abort during a long index build: the build's session is a named writer of
// the migration, so the fence ends it instead of waiting for it. The workflow
// ends aborted within seconds, the build's backend is gone, and the run can
// never write to the destination again.
import { describe, expect, it } from 'vitest';
import { fenced, FencedError } from '../activities/control';
import { abort, startMigration, waitForMigration } from '../client';
import { connect } from '../lib/io/pg';
import { applicationName } from '../lib/io/session';
import { makePair, temporalClient, uid, withWorker } from './harness/env';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// An index whose expression sleeps pgshift_test.delay seconds per row: unset (instant)
// on the source, one second per row on the destination, where the build takes 40 s.
const SOURCE = `
CREATE FUNCTION public.slow_key(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  PERFORM pg_sleep(coalesce(nullif(current_setting('pgshift_test.delay', true), ''), '0')::float8);
  RETURN i;
END $$;
CREATE TABLE public.slow (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO public.slow SELECT g, g FROM generate_series(1, 40) g;
CREATE INDEX slow_idx ON public.slow (public.slow_key(v));`;

describe('abort during an index build', () => {
  it('ends the build at once, ends aborted within seconds and fences the destination', async () => {
    const pair = await makePair();
    await pair.source.sql(SOURCE);
    await pair.destination.cluster.sql(`ALTER DATABASE ${pair.name} SET pgshift_test.delay = '1'`);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({ taskQueue, mode: { schema: true, full: true, incremental: false } });
    const client = await temporalClient();
    const building = () =>
      pair.destination.cluster.sql<{ pid: number; application_name: string }>(
        `SELECT pid, application_name FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE 'CREATE INDEX "slow_idx"%'`,
        'postgres',
        [pair.name],
      );
    const { final, took, build } = await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      const deadline = Date.now() + 60_000;
      let found = await building();
      while (!found.length && Date.now() < deadline) {
        await sleep(200);
        found = await building();
      }
      expect(found, 'the index build started').toHaveLength(1);
      await sleep(1000);
      const t0 = Date.now();
      await abort(client, config.name);
      const final = await waitForMigration(client, config.name);
      return { final, took: Date.now() - t0, build: found[0] };
    });
    console.log(`abort during the index build took ${took} ms`);
    expect(build.application_name).toBe(applicationName('indexes', config.name));
    expect(final.state.phase).toBe('aborted');
    expect(took).toBeLessThan(10_000);

    // The build's backend is gone (it was ended, not waited for: the build needs 40 s), and so is the index.
    const alive = () => pair.destination.cluster.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', 'postgres', [build.pid]);
    for (const deadline = Date.now() + 2000; (await alive()).length && Date.now() < deadline;) await sleep(100);
    expect(await alive()).toEqual([]);
    expect(await pair.destination.sql("SELECT to_regclass('public.slow_idx') AS i")).toEqual([{ i: null }]);

    // Fenced: the run's own token no longer writes.
    expect(await pair.destination.sql('SELECT state FROM pgshift.runs')).toEqual([{ state: 'aborted' }]);
    const c = await connect(config, 'destination');
    try {
      await expect(fenced(c, config.name, final.state.runToken, () => c.query('CREATE TABLE public.after_abort (id int)'))).rejects.toBeInstanceOf(FencedError);
    } finally {
      await c.end();
    }
    expect(await pair.destination.sql("SELECT to_regclass('public.after_abort') AS t")).toEqual([{ t: null }]);
    await client.connection.close();
  });
});
