// Change-apply throttle: with a backlog of many small source transactions
// waiting in the slot, the rate at which rows arrive on the destination
// (counted there every second, independently of pgshift) stays within ±10 % of
// throttle.incrementalRowsPerSecond, and a throttle signal takes effect within
// 5 s (the apply asks the workflow's live throttle every ~2 s). Both rates stay
// well below what a loaded 2-core machine applies (an apply that cannot reach
// the rate says nothing about the throttle). Incremental-only
// mode: the table exists, empty, on both sides before the migration starts.
// A pause and then an abort cancel a round that is mid-backlog: it stops at a
// destination commit and its result still counts, so the status' applied
// changes equal the rows on the destination (each source change is one row).
import type { Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { abort, getStatus, pause, resume, startMigration, throttle, waitForMigration } from '../client';
import { capturePair } from './harness/capture';
import { clusters, type Side, temporalClient, uid, withWorker } from './harness/env';
import { sleep, waitUntil } from './harness/wait';
import { ONLINE_ACKNOWLEDGED } from './harness/online';

const SCHEMA = 'paced';
const DDL = `CREATE SCHEMA ${SCHEMA}; CREATE TABLE ${SCHEMA}.rows (id int PRIMARY KEY, v text NOT NULL)`;
const TRANSACTIONS = 1000;
const PER_TRANSACTION = 100;

async function destinationRows(dst: Side): Promise<number> {
  const [r] = await dst.sql<{ n: string }>(`SELECT count(*)::text AS n FROM ${SCHEMA}.rows`);
  return Number(r.n);
}

/** Row counts on the destination, one a second for `seconds` s, with their times. */
async function sample(dst: Side, seconds: number): Promise<{ at: number; n: number }[]> {
  const out: { at: number; n: number }[] = [];
  const t0 = performance.now();
  for (let i = 0; i <= seconds; i++) {
    await sleep(Math.max(0, t0 + i * 1000 - performance.now()));
    out.push({ at: performance.now(), n: await destinationRows(dst) });
  }
  return out;
}

const rate = (a: { at: number; n: number }, b: { at: number; n: number }) => ((b.n - a.n) * 1000) / (b.at - a.at);

/** Wait until the workflow runs no activity (the cancelled round has returned). */
async function noActivityRunning(client: Client, name: string): Promise<void> {
  await waitUntil(
    'the apply round has stopped',
    async () => ((await client.workflow.getHandle(`pgshift-${name}`).describe()).raw.pendingActivities ?? []).length === 0,
    { timeoutMs: 30_000, everyMs: 100 },
  );
}

describe('incremental throttle', () => {
  it('applies changes at the configured rows/s within ±10 % and follows a throttle signal within 5 s', async () => {
    const cs = clusters();
    const pair = await capturePair({ source: cs.pg15, destination: cs.pg18 });
    await pair.sourceAsRole(DDL);
    await pair.destinationAsRole(DDL);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: false, full: false, incremental: true },
      objects: { schemas: [SCHEMA] },
      throttle: { incrementalRowsPerSecond: 2000 },
      acknowledgeWarnings: ONLINE_ACKNOWLEDGED,
    });
    const client = await temporalClient();
    await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      await waitUntil('the slot exists', async () => (await getStatus(client, config.name)).state.capture, { timeoutMs: 60_000, everyMs: 100 });
      // The backlog: many small source transactions, so rows become visible on the destination gradually.
      const txs: string[] = [];
      for (let i = 0; i < TRANSACTIONS; i++) {
        const lo = i * PER_TRANSACTION + 1;
        txs.push(`BEGIN; INSERT INTO ${SCHEMA}.rows SELECT g, repeat('v', 60) FROM generate_series(${lo}, ${lo + PER_TRANSACTION - 1}) g; COMMIT;`);
      }
      await pair.source.sql(txs.join('\n'));

      await waitUntil('the first rows reach the destination', async () => (await destinationRows(pair.destination)) > 0, { timeoutMs: 60_000, everyMs: 100 });
      await sleep(1000); // past the first burst
      const slow = await sample(pair.destination, 8);
      const steady = rate(slow[0], slow[slow.length - 1]);
      console.log(`online throttle at 2000: ${slow.map((x, i) => (i ? Math.round(rate(slow[i - 1], x)) : x.n)).join(' ')} → ${Math.round(steady)} rows/s`);
      expect(steady).toBeGreaterThan(1800);
      expect(steady).toBeLessThan(2200);

      await throttle(client, config.name, { incrementalRowsPerSecond: 4000 });
      await sleep(5000);
      const fast = await sample(pair.destination, 4);
      const faster = rate(fast[0], fast[fast.length - 1]);
      console.log(`online throttle at 4000: ${fast.map((x, i) => (i ? Math.round(rate(fast[i - 1], x)) : x.n)).join(' ')} → ${Math.round(faster)} rows/s`);
      expect(fast[fast.length - 1].n).toBeLessThan(TRANSACTIONS * PER_TRANSACTION); // still throttled, not out of backlog
      expect(faster).toBeGreaterThan(3600);
      expect(faster).toBeLessThan(4400);

      const s = await getStatus(client, config.name);
      expect(s.state.errors).toEqual([]);
      // The backlog keeps the lag up: the apply runs in catch-up (or, once caught up, incremental).
      expect(['catch-up', 'incremental']).toContain(s.state.phase);
      expect(s.state.throttle.incrementalRowsPerSecond).toBe(4000);

      // Pause mid-round: the round stops at a destination commit and what it applied stays counted.
      const roundsBefore = s.state.capture!.rounds;
      await pause(client, config.name);
      await noActivityRunning(client, config.name);
      const paused = await getStatus(client, config.name);
      const atPause = await destinationRows(pair.destination);
      console.log(`paused: ${paused.state.capture!.changes} changes counted in ${paused.state.capture!.rounds} rounds, ${atPause} rows on the destination`);
      expect(paused.state.capture!.rounds).toBeGreaterThan(roundsBefore);
      expect(paused.state.capture!.changes).toBe(atPause);
      expect(atPause).toBeLessThan(TRANSACTIONS * PER_TRANSACTION);

      // Resume, then abort mid-round (still throttled, still backlog): the aborted round counts too.
      await resume(client, config.name);
      await waitUntil('rows flow again', async () => (await destinationRows(pair.destination)) > atPause + 3000, { timeoutMs: 20_000, everyMs: 100 });
      await abort(client, config.name);
      const final = await waitForMigration(client, config.name);
      expect(final.state.phase).toBe('aborted');
      const atAbort = await destinationRows(pair.destination);
      console.log(`aborted: ${final.state.capture!.changes} changes counted, ${atAbort} rows on the destination`);
      expect(final.state.capture!.changes).toBe(atAbort);
    });
    await client.connection.close();
  });
});
