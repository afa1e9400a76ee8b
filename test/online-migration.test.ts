// An online migration end to end through the workflow (full + incremental):
// the source keeps writing during the full load and during the incremental
// phase — every change kind of the online workload — then stops; once the
// apply has passed the source's last commit, pgshift's own data verification
// and an independent comparison both find the destination identical. The
// slot exists before the first chunk's snapshot; secondary unique indexes and
// foreign keys come only after the consistency point; abort drops the slot.
import { describe, expect, it } from 'vitest';
import { abort, getStatus, pause, resume, startMigration, verify, waitForMigration } from '../client';
import type { PgVersion } from '../dev/postgres';
import { lsnAtLeast } from '../lib/capture-progress';
import { expectOnlineTablesIdentical } from './fixtures/online-workload';
import { clusters, temporalClient, uid, withWorker } from './harness/env';
import { sleep, waitUntil } from './harness/wait';
import { onlineConfig, onlinePair, startWorkload, waitUntilApplied } from './harness/online';

async function onlineMigration(versions: { source: PgVersion; destination: PgVersion }) {
  const cs = clusters();
  const byVersion = { 11: cs.pg11, 14: cs.pg14, 15: cs.pg15, 18: cs.pg18 } as const;
  const pair = await onlinePair(byVersion[versions.source as 11 | 15], byVersion[versions.destination as 14 | 18]);
  const taskQueue = `tq-${uid()}`;
  const config = onlineConfig(pair, {
    taskQueue,
    mode: { schema: true, full: true, incremental: true },
    fullLoad: { chunkMb: 1 },
    parallelism: { tables: 2, indexes: 2 },
  });
  const client = await temporalClient();
  await withWorker(taskQueue, async () => {
    await startMigration(client, config);
    // Writes during the whole run: full load, catch-up, post-data, incremental.
    const workload = startWorkload(pair.source);
    try {
      const seen = new Set<string>();
      await waitUntil(
        'the migration reaches the incremental phase',
        async () => {
          const s = await getStatus(client, config.name);
          seen.add(s.state.phase);
          // A failed migration ends the wait at once (its errors are in the assertion below).
          return ['incremental', 'failed'].includes(s.state.phase) && s;
        },
        { timeoutMs: 150_000, everyMs: 500 },
      ).then((s) => expect(s.state.errors, 'errors of the migration').toEqual([]));
      expect([...seen]).toEqual(expect.arrayContaining(['full-load', 'incremental']));
      // A few more rounds in the incremental phase, then a pause: nothing is consumed while paused.
      const untilRound = workload.rounds() + 3;
      await waitUntil('three more workload rounds', async () => workload.rounds() >= untilRound, { timeoutMs: 60_000 });
      await pause(client, config.name);
      // The running round stops at its next source commit and returns: wait until no apply round runs.
      await waitUntil(
        'the apply round has stopped',
        async () =>
          !((await client.workflow.getHandle(`pgshift-${config.name}`).describe()).raw.pendingActivities ?? []).some(
            (a) => a.activityType?.name === 'applyChanges',
          ),
        { timeoutMs: 30_000, everyMs: 200 },
      );
      const slotAt = async () =>
        (
          await pair.source.sql<{ l: string }>(`SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1`, [
            `pgshift_${config.name}`,
          ])
        )[0].l;
      const atPause = await slotAt();
      await sleep(4000);
      expect(await slotAt()).toBe(atPause);
      await resume(client, config.name);
    } finally {
      await workload.stop();
    }
    // The source is quiet: wait until the destination has applied its last commit.
    await waitUntilApplied(pair, config, 120_000);

    // An independent comparison (the test's own SQL) and pgshift's verification agree.
    await expectOnlineTablesIdentical(pair);
    const { result } = await verify(client, config.name, { data: true });
    expect(Object.values(result.data!.tables).filter((t) => !t.consistent)).toEqual([]);
    expect(result.consistent).toBe(true);

    const s = await getStatus(client, config.name);
    const cap = s.state.capture!;
    expect(cap.consistentAt).not.toBeNull();
    expect(lsnAtLeast(cap.appliedLsn, cap.consistencyLsn)).toBe(true);
    expect(cap.changes).toBeGreaterThan(10_000);
    expect(s.state.dataVerificationDeferred).toMatch(/pgshift verify/);

    // The slot was created before the first chunk's snapshot was taken, from the catalogs: each chunk records the
    // source's WAL insert position read just before its snapshot, and the slot's consistent point precedes them all.
    const order = await pair.destination.sql<{ chunks: number; after_slot: number }>(
      `SELECT count(*)::int AS chunks, (count(*) FILTER (WHERE c.snapshot_min_lsn >= k.start_lsn))::int AS after_slot
         FROM pgshift.chunks c JOIN pgshift.capture k USING (migration) WHERE c.migration = $1`,
      [config.name],
    );
    expect(order[0].chunks).toBeGreaterThan(1);
    expect(order[0].after_slot).toBe(order[0].chunks);
    // Secondary unique indexes and FKs exist now (built after the consistency point).
    const cons = await pair.destination.sql<{ n: string }>(
      `SELECT count(*)::text AS n FROM pg_constraint WHERE connamespace = 'shop'::regnamespace AND contype IN ('f', 'u')`,
    );
    expect(Number(cons[0].n)).toBeGreaterThanOrEqual(5);

    await abort(client, config.name);
    const final = await waitForMigration(client, config.name);
    expect(final.state.phase).toBe('aborted');
    // Abort dropped the slot and the publication: nothing holds back the source's WAL.
    expect(await pair.source.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [`pgshift_${config.name}`])).toEqual([]);
    expect(await pair.source.sql(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [`pgshift_${config.name}`])).toEqual([]);
  });
}

describe('online migration (full + incremental) through the workflow', () => {
  it('converges under writes, 15 → 18: verified by pgshift and by an independent comparison; abort drops the slot', async () => {
    await onlineMigration({ source: 15, destination: 18 });
  });

  it('converges under writes, 11 → 14', async () => {
    await onlineMigration({ source: 11, destination: 14 });
  });
});
