// Shared set-up of the online-migration tests: a capture pair holding the
// online workload's schema, its config, a workload running in the background,
// and the wait until the apply has passed the source's last commit.
import type { Config, ConfigInput } from '../../lib/config';
import type { ClusterHandle } from '../../dev/postgres';
import { parseLsn } from '../../lib/capture/lsn';
import { ONLINE_DDL, ONLINE_SCHEMA, ONLINE_SEED, workloadRound } from '../fixtures/online-workload';
import { capturePair, type CapturePair } from './capture';
import { appliedLsn, sourceInsertLsn } from './capture-compare';
import type { Side } from './env';
import { sleep } from './wait';

/** Precheck warnings an online test accepts: its roles are not superusers and its clusters keep little WAL. */
export const ONLINE_ACKNOWLEDGED: ConfigInput['acknowledgeWarnings'] = ['ddl-capture', 'wal-retention', 'replica-role', 'replica-identity'];

/**
 * A capture pair with the workload's tables and rows on the source (owned by
 * the source role, as a publication requires) and, for incremental-only
 * migrations, the same on the destination.
 */
export async function onlinePair(source: ClusterHandle, destination: ClusterHandle, opts: { destinationHasData?: boolean } = {}): Promise<CapturePair> {
  const pair = await capturePair({ source, destination });
  await pair.sourceAsRole(ONLINE_DDL + ONLINE_SEED);
  if (opts.destinationHasData) await pair.destinationAsRole(ONLINE_DDL + ONLINE_SEED);
  return pair;
}

/** The config of an online migration of the workload's schema. */
export function onlineConfig(pair: CapturePair, overrides: Partial<ConfigInput>): Config {
  return pair.config({ objects: { schemas: [ONLINE_SCHEMA] }, acknowledgeWarnings: ONLINE_ACKNOWLEDGED, ...overrides });
}

export interface RunningWorkload {
  /** Rounds started so far. */
  rounds(): number;
  /** Stop after the round in flight, and wait for it. */
  stop(): Promise<void>;
}

/** Workload rounds on the source, one after the other with a short pause, until stopped. */
export function startWorkload(source: Side, opts: { pauseMs?: number } = {}): RunningWorkload {
  let round = 0;
  let writing = true;
  const running = (async () => {
    while (writing) {
      await workloadRound(source, ++round);
      await sleep(opts.pauseMs ?? 200);
    }
  })();
  return {
    rounds: () => round,
    stop: async () => {
      writing = false;
      await running;
    },
  };
}

/**
 * Workload rounds that go on through an outage of the source (or its fence):
 * a round that fails (the server is down, a session is ended, the database is
 * read-only) is counted, its error kept, and the next round starts after a pause. A round cut short leaves the source consistent (each
 * of its transactions committed or not), so the comparison still holds.
 */
export function startTolerantWorkload(
  source: Side,
  opts: { pauseMs?: number } = {},
): RunningWorkload & { failedRounds(): number; lastFailure(): (Error & { code?: string }) | null } {
  const pauseMs = opts.pauseMs ?? 200;
  let round = 0;
  let failed = 0;
  let last: (Error & { code?: string }) | null = null;
  let writing = true;
  const running = (async () => {
    while (writing) {
      try {
        await workloadRound(source, ++round);
        await sleep(pauseMs);
      } catch (e) {
        failed++;
        last = e as Error & { code?: string };
        await sleep(1000);
      }
    }
  })();
  return {
    rounds: () => round,
    failedRounds: () => failed,
    lastFailure: () => last,
    stop: async () => {
      writing = false;
      await running;
    },
  };
}

/**
 * Wait until the destination has applied everything the source committed so far.
 * Fails once the applied position has not moved for `stallMs`: an apply that is
 * stuck fails fast, one that is slow on a loaded machine (a backlog left by killed
 * workers) is given the time it needs, up to the test's own timeout. On failure the
 * error carries the applied and target positions, how long it waited and, with
 * `explain`, what the caller knows about why (e.g. the workflow's pending activities).
 */
export async function waitUntilApplied(pair: CapturePair, config: Config, stallMs: number, explain?: () => Promise<unknown>): Promise<void> {
  const end = parseLsn(await sourceInsertLsn(pair.source));
  const started = Date.now();
  let last: bigint | null = null;
  let movedAt = Date.now();
  for (;;) {
    const applied = await appliedLsn(config).catch(() => null);
    if (applied !== null && applied >= end) return;
    if (applied !== null && (last === null || applied > last)) {
      last = applied;
      movedAt = Date.now();
    }
    if (Date.now() - movedAt > stallMs) {
      const why = explain ? await explain().catch((x: Error) => `(could not explain: ${x.message})`) : undefined;
      throw new Error(
        `the apply did not pass the source’s last commit: applied ${last?.toString(16) ?? '?'} of ${end.toString(16)}, ` +
          `not moved for ${stallMs / 1000} s (waited ${((Date.now() - started) / 1000).toFixed(0)} s)${why ? `; ${JSON.stringify(why)}` : ''}`,
      );
    }
    await sleep(250);
  }
}
