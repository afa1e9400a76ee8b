// Outage tests: a database server (or Temporal) stopped for a while and
// started again while a migration runs. They stop servers, so they use their
// own — never the suite's shared clusters, which other test files use at the
// same time.
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { expect } from 'vitest';
import { cutover, getStatus, startMigration, throttle, waitForMigration } from '../../client';
import { type LocalCluster, startCluster } from '../../dev/postgres';
import type { Config } from '../../lib/config';
import { toWorkflowId } from '../../lib/migration-ids';
import { startTimeline } from './timeline';
import { expectOnlineTablesIdentical } from '../fixtures/online-workload';
import type { CapturePair } from './capture';
import { temporalClient, uid, withWorker } from './env';
import { onlineConfig, onlinePair, startTolerantWorkload, waitUntilApplied } from './online';
import { sleep, waitUntil } from './wait';

/** A PostgreSQL 15 source and an 18 destination of this test file alone. */
export async function ownClusters(label: string): Promise<{ source: LocalCluster; destination: LocalCluster; stop(): Promise<void> }> {
  const [source, destination] = await Promise.all([startCluster({ version: 15, label: `${label}-src` }), startCluster({ version: 18, label: `${label}-dst` })]);
  return { source, destination, stop: async () => void (await Promise.all([source.stop(), destination.stop()])) };
}

export interface PendingFailure {
  activity: string;
  attempt: number;
  type: string;
  message: string;
  /** The last heartbeat's details (a failed attempt leaves when the failures began). */
  details: unknown;
}

/** The last failure of each activity Temporal is retrying now. */
export async function pendingFailures(client: Client, name: string): Promise<PendingFailure[]> {
  const d = await client.workflow.getHandle(toWorkflowId(name)).describe();
  return (d.raw.pendingActivities ?? []).flatMap((a) =>
    a.lastFailure
      ? [
          {
            activity: a.activityType?.name ?? '?',
            attempt: a.attempt ?? 0,
            type: a.lastFailure.applicationFailureInfo?.type ?? '?',
            message: a.lastFailure.message ?? '',
            details: a.heartbeatDetails?.payloads?.[0] ? defaultPayloadConverter.fromPayload(a.heartbeatDetails.payloads[0]) : undefined,
          },
        ]
      : [],
  );
}

/** What the workflow waits on now: each pending activity's state, attempt, last failure and heartbeat times, and the phase. */
export async function workflowWaits(client: Client, name: string) {
  const d = await client.workflow.getHandle(toWorkflowId(name)).describe();
  const s = await getStatus(client, name).catch(() => null);
  const time = (t: { seconds?: unknown } | null | undefined) => (t?.seconds != null ? new Date(Number(t.seconds) * 1000).toISOString() : null);
  return {
    status: d.status.name,
    phase: s?.state.phase,
    capture: s?.state.capture ? { appliedLsn: s.state.capture.appliedLsn, changes: s.state.capture.changes } : null,
    errors: s?.state.errors,
    pending: (d.raw.pendingActivities ?? []).map((a) => ({
      activity: a.activityType?.name,
      state: a.state,
      attempt: a.attempt,
      scheduled: time(a.scheduledTime),
      started: time(a.lastStartedTime),
      heartbeat: time(a.lastHeartbeatTime),
      failure: a.lastFailure?.message ?? null,
    })),
  };
}

/**
 * After the workload has stopped: the apply passes the source's last commit within `applyMs`,
 * the tables are identical, the migration is still incremental without errors; the cutover (no
 * fence, full verification) ends it done and consistent, and leaves nothing on the source.
 */
export async function expectCleanCutover(client: Client, pair: CapturePair, config: Config, applyMs: number, mark: (what: string) => void = () => undefined) {
  await waitUntilApplied(pair, config, applyMs, () => workflowWaits(client, config.name));
  mark('applied');
  await expectOnlineTablesIdentical(pair);
  const s = await getStatus(client, config.name);
  expect(s.state.phase).toBe('incremental');
  expect(s.state.errors).toEqual([]);

  await cutOver(client, config.name, { fence: 'none', verify: 'full' });
  const final = await waitForMigration(client, config.name);
  mark('cut over');
  expect(final.state.errors).toEqual([]);
  expect(final.state.phase).toBe('done');
  expect(final.state.cutover!.verification).toMatch(/all consistent/);
  await expectOnlineTablesIdentical(pair);
  expect(await sourceLeftovers(pair, config.name)).toEqual({ slots: '0', pubs: '0', schema: false });
}

/**
 * Keep `server` down for `ms`, meanwhile collecting the failures Temporal
 * retries; returns them (those seen during the outage, after a few seconds of
 * it so the retries have started).
 */
export async function outage(server: { shutDown(): Promise<void>; startAgain(): Promise<void> }, client: Client, name: string, ms: number) {
  const seen = new Map<string, PendingFailure>();
  await server.shutDown();
  const end = Date.now() + ms;
  try {
    while (Date.now() < end) {
      for (const f of await pendingFailures(client, name).catch(() => [])) seen.set(`${f.activity}:${f.type}`, f);
      await sleep(1000);
    }
  } finally {
    await server.startAgain();
  }
  return [...seen.values()];
}

/** Slot, publication and control schema of the migration on the source. */
export async function sourceLeftovers(pair: CapturePair, name: string) {
  const [r] = await pair.source.sql<{ slots: string; pubs: string; schema: boolean }>(
    `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)::text AS slots,
            (SELECT count(*) FROM pg_publication WHERE pubname = $1)::text AS pubs,
            EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'pgshift') AS schema`,
    [`pgshift_${name}`],
  );
  return r;
}

/** Ask for the cutover until it is accepted (the lag must be measured and small first). */
export async function cutOver(client: Client, name: string, req: Parameters<typeof cutover>[2]) {
  let answer = await cutover(client, name, req);
  for (let i = 0; !answer.accepted && i < 60; i++) {
    await sleep(1000);
    answer = await cutover(client, name, req);
  }
  expect(answer, 'the cutover is accepted').toMatchObject({ accepted: true });
}

/** Wait until the migration is in `phase` (fails early when it failed). */
export async function waitForPhase(client: Client, name: string, phase: string, timeoutMs: number, log?: (what: string) => void) {
  let last = '';
  const s = await waitUntil(
    `the migration reaches ${phase}`,
    async () => {
      const st = await getStatus(client, name);
      if (st.state.phase !== last) log?.(`phase ${(last = st.state.phase)}`);
      return [phase, 'failed'].includes(st.state.phase) && st;
    },
    { timeoutMs, everyMs: 250 },
  );
  expect(s.state.errors, 'errors').toEqual([]);
  expect(s.state.phase).toBe(phase);
}

/**
 * One migration (15 → 18, full load + change capture) with `which` server
 * stopped for `outageMs` twice: during the full load and during the incremental
 * phase, while a workload writes to the source. Both outages are retried as
 * connection failures; the migration resumes where it was, the destination
 * equals the source (the test's own comparison) and the cutover's full
 * verification is clean; the source is released.
 */
export async function databaseOutageScenario(which: 'source' | 'destination', outageMs = 30_000): Promise<void> {
  const own = await ownClusters(`outage-${which}`);
  try {
    const pair = await onlinePair(own.source, own.destination);
    const taskQueue = `tq-${uid()}`;
    const config = onlineConfig(pair, {
      taskQueue,
      retry: { connectionMinutes: 10, otherMinutes: 1 },
      // Slow enough that the first outage hits the copy; lifted after it.
      throttle: { fullRowsPerSecond: 2000, fullMbPerSecond: null, incrementalRowsPerSecond: null },
      fullLoad: { chunkMb: 1 },
      // Every row is compared once, by the cutover's full verification after both outages.
      verification: { full: false, incremental: true, schema: true },
      cutover: { fence: 'none', verify: 'full' },
    });
    const server = own[which];
    const { mark, text: timeline } = startTimeline();
    const client = await temporalClient();
    try {
      await withWorker(taskQueue, async () => {
        await startMigration(client, config);
        // A round every 2 s: the WAL written during an outage is applied after it, within the test's budget.
        const workload = startTolerantWorkload(pair.source, { pauseMs: 2000 });
        try {
          await waitUntil(
            'the full load has copied rows',
            async () => {
              const s = await getStatus(client, config.name);
              return s.state.phase === 'full-load' && (s.state.fullLoad?.totals.rows ?? 0) > 0;
            },
            { timeoutMs: 60_000, everyMs: 100 },
          );
          mark('full load copying; stopping the server');
          const during = await outage(server, client, config.name, outageMs);
          mark('server started again');
          expect((await getStatus(client, config.name)).state.phase, 'still in the full load after the first outage').toBe('full-load');
          expect(during.filter((f) => f.type === 'ConnectionError').length, `retried failures: ${JSON.stringify(during)}`).toBeGreaterThan(0);
          expect(
            during.filter((f) => f.type !== 'ConnectionError'),
            'failures not classified as connection failures',
          ).toEqual([]);
          await throttle(client, config.name, { fullRowsPerSecond: null });

          await waitForPhase(client, config.name, 'incremental', 180_000, mark);
          const before = workload.rounds();
          await waitUntil('two workload rounds in the incremental phase', async () => workload.rounds() >= before + 2, { timeoutMs: 60_000 });
          mark('stopping the server');
          const applying = await outage(server, client, config.name, outageMs);
          mark('server started again');
          expect(
            applying.some((f) => f.activity === 'applyChanges' && f.type === 'ConnectionError'),
            `retried failures: ${JSON.stringify(applying)}`,
          ).toBe(true);
          expect(
            applying.filter((f) => f.type !== 'ConnectionError'),
            'failures not classified as connection failures',
          ).toEqual([]);
          // Writes after the outage, applied by the resumed apply.
          const after = workload.rounds();
          await waitUntil('two workload rounds after the outage', async () => workload.rounds() >= after + 2, { timeoutMs: 60_000 });
        } finally {
          await workload.stop();
        }
        if (which === 'source') expect(workload.failedRounds(), 'workload rounds cut short by the outages').toBeGreaterThan(0);
        mark('workload stopped');
        await expectCleanCutover(client, pair, config, 120_000, mark);
      });
    } finally {
      console.log(`${which} outage timeline: ${timeline()}`);
      await client.connection.close();
    }
  } finally {
    await own.stop();
  }
}
