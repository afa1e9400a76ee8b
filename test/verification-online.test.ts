// Full data verification while changes flow (SPEC §2 row 8), against real
// servers with the online workload writing all along:
//  - `pgshift verify ID --data` during the incremental phase reports
//    consistent (ranges that differ only because the apply trails are
//    re-checked once it has passed them), and still finds a row changed behind
//    pgshift's back on the destination, with its table and key.
import { describe, expect, it } from 'vitest';
import { abort, getStatus, startMigration, verify, waitForMigration } from '../client';
import { clusters, temporalClient, uid, withWorker } from './harness/env';
import { onlineConfig, onlinePair, startWorkload } from './harness/online';
import { waitUntil } from './harness/wait';

describe('full verification while changes flow', () => {
  it('pgshift verify --data is consistent under a running workload and still finds a tampered row', async () => {
    const cs = clusters();
    const pair = await onlinePair(cs.pg15, cs.pg18);
    const taskQueue = `tq-${uid()}`;
    const config = onlineConfig(pair, {
      taskQueue,
      // The incremental verifier is tested on its own (incremental-verification.test.ts); here it would only share the CPU.
      verification: { full: true, incremental: false, schema: false },
    });
    const client = await temporalClient();
    await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      await waitUntil('the slot exists', async () => (await getStatus(client, config.name)).state.capture, { timeoutMs: 60_000, everyMs: 200 });
      const workload = startWorkload(pair.source);
      try {
        await waitUntil('the incremental phase', async () => ['incremental', 'failed'].includes((await getStatus(client, config.name)).state.phase), {
          timeoutMs: 120_000,
          everyMs: 250,
        });
        const s = (await getStatus(client, config.name)).state;
        expect(s.errors).toEqual([]);

        const during = await verify(client, config.name, { data: true, schema: false });
        expect(
          Object.values(during.result.data!.tables)
            .filter((t) => !t.consistent)
            .map((t) => t.summary),
        ).toEqual([]);
        expect(during.result.consistent).toBe(true);
        expect(workload.rounds()).toBeGreaterThan(1);

        // Behind pgshift's back, on a row the workload never touches.
        await pair.destination.sql(`UPDATE shop.orders SET amount = amount + 1 WHERE id = 10`);
        const tampered = await verify(client, config.name, { data: true, schema: false });
        expect(tampered.result.consistent).toBe(false);
        const bad = Object.values(tampered.result.data!.tables).filter((t) => !t.consistent);
        expect(bad.map((t) => [t.display, t.differingKeys])).toEqual([['shop.orders', [{ key: ['10'], problem: 'different' }]]]);
      } finally {
        await workload.stop();
      }
      await abort(client, config.name);
      expect((await waitForMigration(client, config.name)).state.phase).toBe('aborted');
    });
  });
});
