// Change capture in MigrationWorkflow: the apply lane and the two phases that
// wait on it.
//
// The apply is one activity called in rounds of APPLY_ROUND_SECONDS: each round
// streams the slot from the position stored on the destination, applies, and
// returns where it stands and how far it lags, so the workflow records
// progress, sets the lag search attribute and can pause, hand over or (later)
// cut over between rounds without a message from the activity. A round that
// must stop early (pause, abort, continue-as-new) is cancelled and awaited: it
// stops at a destination commit and nothing it did is lost (the applied
// position is committed with the data).
//
// The lane starts once the keys are built (the apply upserts by key, and a
// chunk's COPY must not meet rows the apply inserted) and runs through the
// remaining phases until the run ends:
//   catch-up     records the consistency point (the source's WAL position once
//                the last chunk is copied) and waits until the apply passes it;
//                only then are secondary unique indexes, foreign keys and
//                triggers built (post-data), because until then replay may
//                revisit older row states;
//   incremental  keeps the apply going until a cutover is accepted (or the run
//                must stop: abort, a hand over to the next run); the cutover
//                phase (cutover.ts) stops the lane and drains it to the fence.
//                With verification.incremental, a second lane runs beside it:
//                the incremental verifier (activities/verify-incremental.ts),
//                in rounds like the apply, cancelled and awaited before the
//                phase returns (continue-as-new, cutover, abort). The apply
//                queues the keys it writes only while that lane exists.
import { CancellationScope, condition, isCancellation, patched, upsertSearchAttributes } from '@temporalio/workflow';
import { newCaptureProgress, recordApplyRound } from '../../lib/capture-progress';
import { newIncrementalVerification, recordTouchedCounts, recordVerifyRound } from '../../lib/incremental-verification';
import { rootCause } from '../../lib/failure';
import { recordChangedTables, recordError } from '../../lib/migration-state';
import { lagBucket, SA_LAG_BUCKET } from '../../lib/search-attributes';
import { DONE, endedByCancel, type PhaseContext, type PhaseOutcome } from './contract';
import { alertOnApplyRound, alertOnDdl, alertOnIncrementalMismatch } from '../monitoring';

/** Length of one apply round: how stale the workflow's view of the lag may get. */
export const APPLY_ROUND_SECONDS = 20;

export interface ApplyLane {
  /** Start the lane if it is not running (idempotent). */
  start(): void;
  /** Stop it: cancel the running round and wait until it has stopped. */
  stop(): Promise<void>;
  /** The failure that ended the lane (a round failed past its retry windows), or null. */
  failure(): unknown;
}

export function applyLane(ctx: Omit<PhaseContext, 'apply'>): ApplyLane {
  const { config, state, acts, heartbeatTimeout } = ctx;
  let running: Promise<void> | null = null;
  let stopping = false;
  let failed: { err: unknown } | null = null;

  const round = async () => {
    const scope = new CancellationScope();
    let ended = false;
    const call = scope.run(() =>
      acts.applyChanges.executeWithOptions(
        {
          // A round ends by itself after APPLY_ROUND_SECONDS; the timeout only bounds a stuck one.
          startToCloseTimeout: '30m',
          heartbeatTimeout,
          summary: `apply changes from slot ${state.capture?.slot ?? ''}`,
        },
        [
          {
            config,
            runToken: state.runToken,
            maxSeconds: APPLY_ROUND_SECONDS,
            rowsPerSecond: state.throttle.incrementalRowsPerSecond,
            ...(state.capture?.ddl?.skipped.length ? { ddlSkips: state.capture.ddl.skipped } : {}),
            // Keys are queued for the incremental verifier once it runs (and only past the consistency point).
            ...(state.incrementalVerification && state.capture?.consistentAt ? { recordTouched: true } : {}),
            // Catching up: the round returns as soon as it passes the consistency point, so post-data starts at once.
            ...(state.capture?.consistencyLsn && !state.capture.consistentAt ? { stopAtLsn: state.capture.consistencyLsn } : {}),
          },
        ],
      ),
    );
    call.then(
      () => (ended = true),
      () => (ended = true),
    );
    try {
      await condition(() => ended || stopping || state.paused);
    } catch (err) {
      // Cancelled from outside (abort): the call's scope is cancelled with it; still wait below until the
      // activity has stopped, so the fence and the slot's release never overlap with a running round.
      if (!isCancellation(err)) throw err;
    }
    if (!ended) scope.cancel();
    try {
      const r = await call;
      const p = state.capture!;
      const blockedBefore = p.ddl?.blocked?.entry ?? null;
      recordApplyRound(p, r, new Date().toISOString());
      if (r.touched && state.incrementalVerification) recordTouchedCounts(state.incrementalVerification, r.touched);
      recordChangedTables(state, r.changedTables);
      alertOnApplyRound(acts, config, p);
      if (r.ddl) alertOnDdl(acts, config, r.ddl.events, blockedBefore);
      const bucket = lagBucket(p.lagSeconds);
      if (bucket) upsertSearchAttributes([{ key: SA_LAG_BUCKET, value: bucket }]);
      ctx.show();
    } catch (err) {
      // Cancelled by this lane (pause, stop): the loop decides what next. Cancelled from outside (abort): the lane ends.
      if ((!stopping && !state.paused) || !endedByCancel(err)) throw err;
    }
  };

  const loop = async () => {
    while (!stopping) {
      // Paused: nothing is consumed, the slot keeps the WAL; resume continues from the applied position.
      await condition(() => !state.paused || stopping);
      if (stopping) return;
      // Stopped at a DDL it cannot replay: the next round waits for the operator's skip (pgshift ddl skip).
      const blocked = state.capture?.ddl?.blocked;
      if (blocked) {
        await condition(() => stopping || state.paused || !!state.capture?.ddl?.skipped.includes(blocked.entry));
        if (stopping || state.paused) continue;
      }
      await round();
    }
  };

  return {
    start() {
      if (running) return;
      stopping = false;
      running = loop().catch((err) => void (failed = { err }));
    },
    async stop() {
      stopping = true;
      await running;
      running = null;
    },
    failure: () => (failed ? failed.err : null),
  };
}

/** The phase waits for `done` (or the lane's failure, or the run's stop). */
async function waitOnLane(ctx: PhaseContext, done: () => boolean): Promise<PhaseOutcome> {
  ctx.apply.start();
  await condition(() => done() || ctx.apply.failure() !== null || ctx.stopReason() !== null);
  const failure = ctx.apply.failure();
  if (failure) throw failure;
  return done() ? DONE : ctx.stopReason()!;
}

/** prepare (with change capture): the slot, publication and heartbeat on the source, before any chunk is copied. */
export async function prepareCapture(ctx: PhaseContext): Promise<void> {
  const { config, state, acts, src } = ctx;
  if (state.capture) return;
  const r = await acts.prepareSource.executeWithOptions({ startToCloseTimeout: '30m', summary: `slot, publication and heartbeat on ${src}` }, [
    { config, runToken: state.runToken },
  ]);
  state.capture = newCaptureProgress(r.slotName, r.startLsn);
  // Without a full load the destination already holds the data: the stream is consistent from its start.
  if (!config.mode.full) state.capture.consistencyLsn = r.startLsn;
  ctx.show();
}

export async function runCatchUp(ctx: PhaseContext): Promise<PhaseOutcome> {
  const { config, state, acts, src } = ctx;
  const p = state.capture!;
  if (!p.consistencyLsn) {
    // Every chunk is copied by now: the source's position now is past every chunk's snapshot.
    p.consistencyLsn = (
      await acts.sourceWalPosition.executeWithOptions({ startToCloseTimeout: '5m', summary: `consistency point: WAL position of ${src}` }, [{ config }])
    ).lsn;
    ctx.show();
  }
  return waitOnLane(ctx, () => p.consistentAt !== null);
}

/** Length of one incremental-verification round. */
export const VERIFY_ROUND_SECONDS = 20;

/**
 * The incremental verifier in rounds until stopped. A failure past the retry
 * windows ends the lane (recorded in status); the migration goes on.
 */
function verifyLane(ctx: PhaseContext) {
  const { config, state, acts, heartbeatTimeout } = ctx;
  const scope = new CancellationScope();
  let stopping = false;
  const v = (state.incrementalVerification ??= newIncrementalVerification(new Date().toISOString(), config.verification.incrementalRowsPerSecond));
  v.failure = null;
  const loop = async () => {
    while (!stopping) {
      await condition(() => !state.paused || stopping);
      if (stopping) return;
      try {
        const r = await scope.run(() =>
          acts.verifyTouchedRows.executeWithOptions(
            { startToCloseTimeout: '30m', heartbeatTimeout, summary: 'incremental verification: compare recently changed rows' },
            [{ config, runToken: state.runToken, maxSeconds: VERIFY_ROUND_SECONDS }],
          ),
        );
        recordVerifyRound(v, r);
        if (r.mismatches.length) void alertOnIncrementalMismatch(acts, config, r.mismatches);
        ctx.show();
      } catch (err) {
        if (stopping && endedByCancel(err)) return;
        if (isCancellation(err)) throw err;
        v.failure = rootCause(err).message;
        recordError(state, new Date().toISOString(), rootCause(err));
        ctx.show();
        return;
      }
    }
  };
  const running = loop();
  return {
    async stop() {
      stopping = true;
      scope.cancel();
      await running.catch(() => undefined);
    },
  };
}

export async function runIncremental(ctx: PhaseContext): Promise<PhaseOutcome> {
  // The apply runs until a cutover is accepted (or the migration is aborted, or hands over to the next run).
  const verifier = ctx.config.verification.incremental && patched('incremental-verification') ? verifyLane(ctx) : null;
  try {
    // The apply round in flight (started in an earlier phase) does not queue keys: it ends at a commit, and the next one does.
    if (verifier) await ctx.apply.stop();
    return await waitOnLane(ctx, () => !!ctx.state.cutover && !ctx.state.cutover.failure);
  } finally {
    // Nothing the phase started runs on after it: the verifier round is cancelled and awaited.
    if (verifier) await CancellationScope.nonCancellable(() => verifier.stop());
  }
}
