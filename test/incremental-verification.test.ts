// Incremental data verification (verification.incremental) against real
// servers, with the online workload writing all along (every kind of change:
// PK changes, TOAST, truncates, 10,000-row transactions):
//  - the rows the apply writes are compared once it has passed them, with no
//    false mismatch, over the budget they are sampled and status says so;
//  - a row changed behind pgshift's back on the destination (a TOASTed body
//    the apply keeps, since the source sends it as unchanged) is reported with
//    its table and key, in status and by the alert webhook.
import { describe, expect, it } from 'vitest';
import { abort, getStatus, startMigration, waitForMigration } from '../client';
import { clusters, temporalClient, uid, withWorker } from './harness/env';
import { onlineConfig, onlinePair, startWorkload } from './harness/online';
import { waitUntil } from './harness/wait';
import { alertReceiver } from './harness/webhook';

describe('incremental verification', () => {
  it('compares changed rows under a running workload without a false mismatch, samples over its budget, and reports a tampered row with table and key', async () => {
    const hook = await alertReceiver();
    const cs = clusters();
    const pair = await onlinePair(cs.pg15, cs.pg18, { destinationHasData: true });
    const taskQueue = `tq-${uid()}`;
    const config = onlineConfig(pair, {
      taskQueue,
      mode: { schema: false, full: false, incremental: true },
      verification: { full: false, incremental: true, schema: false, incrementalRowsPerSecond: 1000 },
      alerts: { lagSeconds: 600, webhookUrl: hook.url },
    });
    const client = await temporalClient();
    try {
      await withWorker(taskQueue, async () => {
        await startMigration(client, config);
        await waitUntil('the incremental phase', async () => ['incremental', 'failed'].includes((await getStatus(client, config.name)).state.phase), {
          timeoutMs: 60_000,
          everyMs: 250,
        });
        const workload = startWorkload(pair.source);
        try {
          // Enough rounds for every kind of change, a truncate included, to be applied and compared.
          await waitUntil(
            'rows compared under the workload',
            async () => {
              const v = (await getStatus(client, config.name)).state.incrementalVerification;
              // …and an apply round that queued keys has ended (its counters come with its result).
              return workload.rounds() >= 6 && (v?.checked ?? 0) >= 2000 && v!.rounds >= 1 && v!.recorded > 0;
            },
            { timeoutMs: 60_000, everyMs: 500 },
          );
          const during = (await getStatus(client, config.name)).state;
          expect(during.errors).toEqual([]);
          expect(during.incrementalVerification!.mismatched).toBe(0);
          expect(during.incrementalVerification!.mismatches).toEqual([]);
          // 10,000-row transactions are far over 1,000 rows/s: sampled, and status says so.
          expect(during.incrementalVerification!.skipped).toBeGreaterThan(0);
        } finally {
          await workload.stop();
        }
        // Behind pgshift's back: doc 399's TOASTed body on the destination. The source then changes the row's counter
        // only, so the stream sends the body as unchanged and the apply keeps the tampered one. (After the workload: a
        // sample could leave this one change out.)
        await pair.destination.sql(`UPDATE shop.docs SET body = 'tampered' WHERE id = 399`);
        await new Promise((r) => setTimeout(r, 1500)); // the budget's second refills
        await pair.source.sql(`UPDATE shop.docs SET counter = counter + 1000 WHERE id = 399`);
        await waitUntil('the mismatch is reported', async () => ((await getStatus(client, config.name)).state.incrementalVerification?.mismatched ?? 0) > 0, {
          timeoutMs: 60_000,
          everyMs: 500,
        });
        const s = await getStatus(client, config.name);
        const v = s.state.incrementalVerification!;
        // Only the tampered row, nothing the workload changed.
        expect(v.mismatches.map((m) => [m.table, m.key, m.problem])).toEqual([['shop.docs', ['399'], 'different']]);
        const { renderStatusMarkdown } = await import('../lib/migration-state');
        const md = renderStatusMarkdown(config.name, config, s.state);
        expect(md).toMatch(/Incremental verification: [\d,]+ rows checked, ❌ 1 mismatched/);
        expect(md).toMatch(/shop\.docs key \(399\): different/);
        expect(md).toMatch(/sampl/);
        await waitUntil('the alert reaches the webhook', async () => hook.alerts().some((a) => a.kind === 'verification-mismatch'), {
          timeoutMs: 30_000,
          everyMs: 200,
        });
        const alert = hook.alerts().find((a) => a.kind === 'verification-mismatch')!;
        expect(alert.message).toMatch(/shop\.docs key \(399\) different/);
        expect(alert.details).toMatchObject({ table: 'shop.docs', key: ['399'] });
        await abort(client, config.name);
        expect((await waitForMigration(client, config.name)).state.phase).toBe('aborted');
      });
    } finally {
      await hook.close();
    }
  });
});
