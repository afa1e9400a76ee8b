// What every phase of MigrationWorkflow is: a function of the phase context
// that returns how it ended. The workflow acts on the outcome in one place:
//  - done: the next phase runs (or, when the history is long, the next run
//    starts with it);
//  - continue-as-new: the phase stopped part-way because the history is long;
//    the next run starts this phase again from the state and from the
//    destination's control tables (what is done is recorded there);
//  - aborted: the phase stopped because of an abort;
//  - back-to: the phase undid what it did and an earlier phase runs again
//    (a cutover that failed before the destination was ready).
// A phase returns only once nothing it started is still running: the
// activities it stopped were cancelled and their cancellation acknowledged
// (activities stop their statement when cancelled), so the next run, or the
// abort's fencing, never overlaps with them.
//
// An open-ended phase (the change apply, which runs until cutover) is one long
// activity run through runUntilStopped: it ends when the activity ends by
// itself, when the phase's own condition says so (a cutover), or when the run
// must stop; stopping cancels the activity and waits for it. Whatever such a
// phase needs to resume (e.g. the applied position) lives on the destination,
// never in the workflow state.
import type { Duration } from '@temporalio/common';
import { ActivityFailure, CancellationScope, condition, isCancellation, patched, type proxyActivities } from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { Activities } from '../../activities';
import type { Config } from '../../lib/config';
import type { MigrationState } from '../../lib/migration-state';
import type { ApplyLane } from './incremental';

export type PhaseOutcome =
  | { kind: 'done' }
  | { kind: 'continue-as-new' }
  | { kind: 'aborted' }
  // A phase that undid its work and hands back to an earlier one (a cutover that failed before `ready`: the apply goes on).
  | { kind: 'back-to'; phase: 'incremental' };

export const DONE: PhaseOutcome = { kind: 'done' };
export const CONTINUE_AS_NEW: PhaseOutcome = { kind: 'continue-as-new' };
export const ABORTED: PhaseOutcome = { kind: 'aborted' };

/**
 * Whether `err` is how an activity this workflow cancelled has ended: its cancellation, or — when the
 * cancellation could not reach the worker in time (Temporal restarted, the worker lost its connection,
 * the machine stalled) — the heartbeat timeout or failure the server reports instead of a retry
 * ("cancel requested"). Either way the activity's work is what its own commits recorded, and the
 * caller goes on as after a cancellation; an activity still running somewhere cannot overlap with the
 * next one where it matters (one walsender per slot, the applied position moves by compare-and-set).
 */
export function endedByCancel(err: unknown): boolean {
  if (isCancellation(err)) return true;
  // Histories from before this rule failed here: they replay the same way.
  return err instanceof ActivityFailure && err.retryState === RetryState.CANCEL_REQUESTED && patched('cancel-requested-failure-is-a-stop');
}

export type ActivityProxies = ReturnType<typeof proxyActivities<Activities>>;

export interface PhaseContext {
  config: Config;
  state: MigrationState;
  acts: ActivityProxies;
  heartbeatTimeout: Duration;
  /** Source and destination labels, for activity summaries. */
  src: string;
  dst: string;
  /** Refresh the status shown in the UI. */
  show: () => void;
  /** Waits while paused; false when an abort came in. */
  mayProceed: () => Promise<boolean>;
  /** Why the phase must stop now (abort, or a history long enough to continue as new); null to go on. */
  stopReason: () => PhaseOutcome | null;
  /** For tests of the hand-over: continue as new after this many chunk copies in one run. */
  continueAsNewAfterChunks?: number;
  /** For tests of the paging: chunks per page of the full-load plan. */
  fullLoadPageChunks?: number;
  /** The change apply, running in rounds in the background once started (mode.incremental). */
  apply: ApplyLane;
}

export type Phase = (ctx: PhaseContext) => Promise<PhaseOutcome>;

/**
 * Run one long activity until it ends by itself (its result, outcome done),
 * until `until` gives an outcome, or until the run must stop (ctx.stopReason);
 * in the last two cases the activity is cancelled and this returns only after
 * the activity has acknowledged the cancellation — which takes the activity
 * option cancellationType WAIT_CANCELLATION_COMPLETED (MigrationWorkflow's
 * proxies set it; left unset, the SDK does not wait).
 */
export async function runUntilStopped<T>(
  ctx: Pick<PhaseContext, 'stopReason'>,
  start: () => Promise<T>,
  until: () => PhaseOutcome | null = () => null,
): Promise<{ outcome: PhaseOutcome; result?: T }> {
  const scope = new CancellationScope();
  let ended = false;
  const running = scope.run(start);
  running.then(
    () => (ended = true),
    () => (ended = true),
  );
  const stop = () => until() ?? ctx.stopReason();
  await condition(() => ended || stop() !== null);
  if (ended) return { outcome: DONE, result: await running };
  const outcome = stop()!;
  scope.cancel();
  try {
    return { outcome: DONE, result: await running }; // it finished before the cancellation reached it
  } catch (err) {
    if (!endedByCancel(err)) throw err;
    return { outcome };
  }
}

/**
 * Wait for every lane, then fail with the first failure: unlike Promise.all,
 * nothing a phase started is still running when the phase throws.
 */
export async function allLanes(lanes: Promise<unknown>[]): Promise<void> {
  const settled = await Promise.allSettled(lanes);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}
