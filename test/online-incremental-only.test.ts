// Incremental-only mode (schema: false, full: false, incremental: true): the
// destination already holds the same tables and rows (created on both sides
// before the migration starts), so the migration neither migrates the schema
// nor copies rows — it creates the slot and applies every change committed
// after the slot's start. The stream is consistent from its first change: the
// consistency point is the slot's start.
import { describe, expect, it } from 'vitest';
import { abort, getStatus, startMigration, waitForMigration } from '../client';
import { parseLsn } from '../lib/capture/lsn';
import { expectOnlineTablesIdentical } from './fixtures/online-workload';
import { clusters, temporalClient, uid, withWorker } from './harness/env';
import { waitUntil } from './harness/wait';
import { onlineConfig, onlinePair, startWorkload, waitUntilApplied } from './harness/online';

describe('incremental-only migration', () => {
  it('applies the changes after the slot’s start to a destination that already holds the data; no schema, no full load', async () => {
    const cs = clusters();
    const pair = await onlinePair(cs.pg15, cs.pg18, { destinationHasData: true });
    await expectOnlineTablesIdentical(pair);
    const taskQueue = `tq-${uid()}`;
    const config = onlineConfig(pair, {
      taskQueue,
      mode: { schema: false, full: false, incremental: true },
    });
    const client = await temporalClient();
    await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      const seen = new Set<string>();
      const phase = async () => {
        const s = await getStatus(client, config.name);
        seen.add(s.state.phase);
        return s;
      };
      // Writes begin once the slot exists: the destination's rows are the state at the slot's start.
      await waitUntil('the slot exists', async () => (await phase()).state.capture, { timeoutMs: 60_000, everyMs: 100 });
      const workload = startWorkload(pair.source);
      try {
        await waitUntil('the migration reaches the incremental phase', async () => ['incremental', 'failed'].includes((await phase()).state.phase), {
          timeoutMs: 60_000,
          everyMs: 250,
        });
        const untilRound = workload.rounds() + 4;
        await waitUntil('four more workload rounds', async () => workload.rounds() >= untilRound || (await phase()).state.phase === 'failed', {
          timeoutMs: 60_000,
        });
      } finally {
        await workload.stop();
      }
      await waitUntilApplied(pair, config, 90_000);
      await expectOnlineTablesIdentical(pair);

      // The status counts an apply round's changes once the round reports them (its heartbeat, or its end: ≤ 20 s).
      const s = await waitUntil(
        'status counts the applied changes',
        async () => {
          const x = await phase();
          return (x.state.capture?.changes ?? 0) > 10_000 ? x : null;
        },
        { timeoutMs: 45_000, everyMs: 500 },
      );
      expect(s.state.errors).toEqual([]);
      expect(s.state.phase).toBe('incremental');
      expect([...seen]).not.toContain('schema');
      expect([...seen]).not.toContain('full-load');
      const cap = s.state.capture!;
      expect(cap.consistencyLsn).toBe(cap.startLsn);
      expect(cap.consistentAt).not.toBeNull();
      expect(cap.changes).toBeGreaterThan(10_000);
      expect(s.state.fullLoad?.totals.chunks ?? 0).toBe(0);
      // The slot's start is where the stream began.
      const [slot] = await pair.source.sql<{ lsn: string }>(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`, [
        `pgshift_${config.name}`,
      ]);
      expect(parseLsn(slot.lsn) >= parseLsn(cap.startLsn)).toBe(true);

      await abort(client, config.name);
      const final = await waitForMigration(client, config.name);
      expect(final.state.phase).toBe('aborted');
      // The apply round in flight had stopped (cancelled, not failed) before the fence and the slot's release began.
      const { events } = await client.workflow.getHandle(final.workflowId).fetchHistory();
      const closed = new Map<string, { at: number; how: string }>();
      const scheduled: { id: string; type: string; at: number }[] = [];
      events!.forEach((e, at) => {
        const a = e.activityTaskScheduledEventAttributes;
        if (a) scheduled.push({ id: String(e.eventId), type: a.activityType!.name!, at });
        for (const [how, x] of Object.entries({
          completed: e.activityTaskCompletedEventAttributes,
          failed: e.activityTaskFailedEventAttributes,
          canceled: e.activityTaskCanceledEventAttributes,
          timedOut: e.activityTaskTimedOutEventAttributes,
        }))
          if (x) closed.set(String(x.scheduledEventId), { at, how });
      });
      const fence = scheduled.find((x) => x.type === 'abortDestination')!;
      const rounds = scheduled.filter((x) => x.type === 'applyChanges');
      expect(rounds.length).toBeGreaterThan(0);
      for (const r of rounds) {
        const c = closed.get(r.id);
        expect(c && c.at < fence.at, `apply round ${r.id} ended before the fence`).toBe(true);
        expect(c!.how).not.toBe('failed');
      }
      expect(await pair.source.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [`pgshift_${config.name}`])).toEqual([]);
    });
    await client.connection.close();
  });
});
