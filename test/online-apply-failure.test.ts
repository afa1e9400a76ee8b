// SPEC §2 retry semantics, the "other" window: a destination-only CHECK
// constraint that a source change violates. The apply round fails with a
// constraint violation (not a connection failure), is retried for
// retry.otherMinutes (1 min here), then the migration fails with a
// non-retryable error that names the table, the key and the operation — in the
// workflow's own failure and in status — and the source is released (no slot,
// publication or control schema left).
import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { getStatus, startMigration, waitForMigration } from '../client';
import { rootCause } from '../lib/failure';
import { clusters, temporalClient, uid, withWorker } from './harness/env';
import { onlineConfig, onlinePair } from './harness/online';
import { pendingFailures, sourceLeftovers, waitForPhase } from './harness/outage';
import { waitUntil } from './harness/wait';

describe('apply failure past the other-failure window', () => {
  it('retries a destination-only constraint violation for retry.otherMinutes, then fails naming the table and the key; the source is released', async () => {
    const cs = clusters();
    const pair = await onlinePair(cs.pg15, cs.pg18, { destinationHasData: true });
    await pair.destination.sql(`ALTER TABLE shop.tags ADD CONSTRAINT tags_label_not_forbidden CHECK (label <> 'forbidden')`);
    const taskQueue = `tq-${uid()}`;
    const config = onlineConfig(pair, {
      taskQueue,
      mode: { schema: false, full: false, incremental: true },
      retry: { connectionMinutes: 10, otherMinutes: 1 },
    });
    const client = await temporalClient();
    await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      await waitForPhase(client, config.name, 'incremental', 60_000);
      // One bad row among many in one transaction, after changes the apply takes.
      await pair.source.sql(`UPDATE shop.customers SET updates = updates + 1 WHERE id <= 100`);
      const updated = async () => (await pair.destination.sql<{ n: number }>(`SELECT count(*)::int AS n FROM shop.customers WHERE updates = 1`))[0].n;
      await waitUntil('the first change is applied', async () => (await updated()) === 100, { timeoutMs: 30_000, everyMs: 250 });
      const committedAt = Date.now();
      await pair.source.sql(
        `BEGIN; INSERT INTO shop.tags SELECT g, 'tag ' || g FROM generate_series(100, 199) g; UPDATE shop.tags SET label = 'forbidden' WHERE id = 142; COMMIT`,
      );
      const failedAt = Date.now();
      // Retried as an "other" failure meanwhile, with the key in its text.
      const retried = await waitUntil(
        'the apply round is retried',
        async () => (await pendingFailures(client, config.name)).find((f) => f.activity === 'applyChanges' && f.attempt >= 2),
        { timeoutMs: 30_000, everyMs: 250 },
      );
      expect(retried.type).toBe('OperationError');
      expect(retried.message).toMatch(/shop\.tags, key \(id\)=\(142\)/);
      // Between attempts the last beat says since when the round fails: the window counts from there.
      const beat = await waitUntil(
        'a failed attempt records when the failures began',
        async () =>
          (await pendingFailures(client, config.name)).find(
            (f) => f.activity === 'applyChanges' && typeof (f.details as { failingSince?: { other?: unknown } } | undefined)?.failingSince?.other === 'number',
          ),
        { timeoutMs: 30_000, everyMs: 100 },
      );
      const since = (beat.details as { failingSince: { other: number } }).failingSince.other;
      expect(since).toBeGreaterThanOrEqual(committedAt);
      expect(since).toBeLessThan(Date.now());

      const err = await waitForMigration(client, config.name).then(
        () => null,
        (e: unknown) => e,
      );
      const elapsed = (Date.now() - failedAt) / 1000;
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const root = rootCause(err);
      console.log(`failed after ${elapsed.toFixed(0)} s: ${root.type}: ${root.message}`);
      expect(root.message).toMatch(/^table shop\.tags, key \(id\)=\(142\), update: .*tags_label_not_forbidden.*\[23514\].*1-minute other-failure retry window/);
      expect(root.type).toBe('RetryWindowExceeded');
      expect(root.nonRetryable).toBe(true);
      // The window counts from the first failure, not from the round's start.
      expect((Date.now() - since) / 1000).toBeGreaterThanOrEqual(60);
      expect(elapsed).toBeGreaterThan(55);
      expect(elapsed).toBeLessThan(150);

      const s = await getStatus(client, config.name);
      expect(s.state.phase).toBe('failed');
      expect(s.state.errors.map((e) => e.message).join('\n')).toMatch(/shop\.tags, key \(id\)=\(142\)/);
      // The change before stays applied; nothing of the bad row's transaction is.
      expect(await updated()).toBe(100);
      expect(await pair.destination.sql(`SELECT count(*)::int AS n FROM shop.tags WHERE id >= 100`)).toEqual([{ n: 0 }]);
      expect(await sourceLeftovers(pair, config.name)).toEqual({ slots: '0', pubs: '0', schema: false });
      // What the activity cannot classify (a worker dying on every attempt, none at all) is retried up to the 7-day ceiling.
      const { events } = await client.workflow.getHandle(s.workflowId).fetchHistory();
      const round = events!.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'applyChanges')!.activityTaskScheduledEventAttributes!;
      expect(Number(round.scheduleToCloseTimeout!.seconds)).toBe(7 * 24 * 3600);
      expect(Number(round.retryPolicy!.maximumInterval!.seconds)).toBe(15);
    });
    await client.connection.close();
  }, 240_000);
});
