// Throttle: the copy rate, measured independently on the destination from
// pg_stat_progress_copy, stays within ±10 % of the configured rows/s over 10 s,
// and a throttle signal mid-copy takes effect within 5 s.
import { describe, expect, it } from 'vitest';
import { getStatus, startMigration, throttle, waitForMigration } from '../client';
import { makePair, type Side, temporalClient, uid, withWorker } from './harness/env';
import { waitUntil } from './harness/wait';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Rows processed so far by running COPY FROM on the destination database. */
async function copiedRows(dst: Side): Promise<number> {
  const [r] = await dst.cluster.sql<{ n: string | null }>(
    `SELECT sum(tuples_processed) AS n FROM pg_stat_progress_copy p JOIN pg_database d ON d.oid = p.datid WHERE d.datname = $1`,
    'postgres',
    [dst.database],
  );
  return Number(r.n ?? 0);
}

async function rateOver(dst: Side, ms: number): Promise<number> {
  const a = await copiedRows(dst);
  const t0 = performance.now();
  await sleep(ms);
  const b = await copiedRows(dst);
  return ((b - a) * 1000) / (performance.now() - t0);
}

describe('throttle', () => {
  it('holds the configured rows/s within ±10 % and applies a change within 5 s', async () => {
    const pair = await makePair();
    const ddl = 'CREATE TABLE public.paced (id int PRIMARY KEY, v text NOT NULL)';
    await pair.source.sql(`${ddl}; INSERT INTO public.paced SELECT g, repeat('v', 60) FROM generate_series(1, 300000) g`);
    await pair.destination.sql(`${ddl}; GRANT ALL ON public.paced TO ${pair.destination.user}`);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: false, full: true, incremental: false },
      verification: { full: false, incremental: false, schema: false },
      parallelism: { tables: 1, indexes: 1 },
      throttle: { fullRowsPerSecond: 5000 },
    });
    const client = await temporalClient();
    await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      await waitUntil('the first rows reach the destination', async () => (await copiedRows(pair.destination)) > 0, { timeoutMs: 30_000 });
      await sleep(1000); // past the first burst
      const steady = await rateOver(pair.destination, 10_000);
      expect(steady).toBeGreaterThan(4500);
      expect(steady).toBeLessThan(5500);
      // Status shows the running chunk's rows live (from its heartbeats), long before the chunk is done.
      const live = Object.values((await getStatus(client, config.name)).state.fullLoad!.tables)[0];
      expect(live.chunksDone).toBe(0);
      expect(live.rows).toBeGreaterThan(40_000);
      expect(live.rows).toBeLessThan(300_000);

      await throttle(client, config.name, { fullRowsPerSecond: 20000 });
      await sleep(5000);
      const faster = await rateOver(pair.destination, 3000);
      expect(faster).toBeGreaterThan(18000);
      expect(faster).toBeLessThan(22000);
      await throttle(client, config.name, { fullRowsPerSecond: null }); // finish quickly
      const final = await waitForMigration(client, config.name);
      expect(final.state.fullLoad!.tables[Object.keys(final.state.fullLoad!.tables)[0]].rows).toBe(300000);
      console.log(`throttle: steady ${Math.round(steady)} rows/s at 5000, ${Math.round(faster)} rows/s at 20000`);
    });
    await client.connection.close();
  });
});
