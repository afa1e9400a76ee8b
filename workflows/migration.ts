// MigrationWorkflow: a state machine over one explicit MigrationState (see
// lib/migration-state.ts). Each phase (workflows/phases/) is one or more
// activities and ends with an outcome — done, continue-as-new or aborted —
// that this workflow acts on in one place; signals only change the state; the
// state is handed to the next run on continue-as-new so a migration that runs
// for weeks keeps a bounded history.
import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
export * from './definitions';
import {
  abortSignal,
  configQuery,
  cutoverSignal,
  type CutoverRequest,
  liveThrottleQuery,
  type MigrationStatus,
  ddlSkipSignal,
  pauseSignal,
  requestCutoverUpdate,
  resumeSignal,
  statusQuery,
  throttleSignal,
} from './definitions';
import { cutoverRefusal, newCutover } from '../lib/cutover-progress';
import { newDdlProgress } from '../lib/capture-progress';
import {
  initialState,
  type MigrationInput,
  type MigrationState,
  type Phase,
  PHASES,
  phaseEnabled,
  recordError,
  renderStatusMarkdown,
} from '../lib/migration-state';
import { failureOf, rootCause } from '../lib/failure';
import { endpointLabel } from '../lib/migration-ids';
import { SA_PHASE } from '../lib/search-attributes';
import { ABORTED, CONTINUE_AS_NEW, DONE, type PhaseContext, type PhaseOutcome } from './phases/contract';
import { PHASE_RUNNERS, type RunnablePhase } from './phases';
import { applyLane } from './phases/incremental';
import { alertOnFailure, reportPhase } from './monitoring';

/** Activities beat every second (activities/heartbeat.ts): 15 s without one means the worker is gone. */
const HEARTBEAT_TIMEOUT = '15s' as const;

/**
 * The migration as a whole survives up to 7 days of failures (SPEC §2, the seed's "DTS retries failed
 * tasks for up to 7 days"): Temporal keeps retrying an activity for at most this long, whatever the failure.
 */
export const RETRY_CEILING_MS = 7 * 24 * 3_600_000;

/** Activity options by the kind of work: short catalog work vs long data work that heartbeats. */
function activities() {
  // Retry windows are enforced inside the activities (activities/retry.ts): a connection failure
  // becomes non-retryable after retry.connectionMinutes, any other after retry.otherMinutes.
  // Here Temporal paces the attempts — at most 15 s apart, so work resumes within 15 s of an outage's
  // end — detects dead workers by heartbeat, and bounds what the activity cannot see (a worker that
  // dies on every attempt, no worker at all) by the 7-day ceiling.
  const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s' } as const;
  return proxyActivities<Activities>({
    // A cancelled activity is waited for until it acknowledges (the SDK's unset value means TRY_CANCEL, which would not wait).
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    startToCloseTimeout: '2h',
    // A killed worker is noticed when its heartbeats stop: keep this short so
    // its work moves to another worker quickly (activities beat every few seconds).
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    scheduleToCloseTimeout: RETRY_CEILING_MS,
    retry,
  });
}

export async function MigrationWorkflow(input: MigrationInput): Promise<MigrationStatus> {
  const { config } = input;
  const state: MigrationState = input.state ?? initialState(config, uuid4(), new Date().toISOString());
  const acts = activities();
  const src = endpointLabel(config.source);
  const dst = endpointLabel(config.destination);
  const status = (): MigrationStatus => ({
    name: config.name,
    workflowId: workflowInfo().workflowId,
    source: src,
    destination: dst,
    mode: config.mode,
    verification: config.verification,
    state,
  });
  const show = () => setCurrentDetails(renderStatusMarkdown(config.name, config, state));

  setHandler(statusQuery, status);
  setHandler(configQuery, () => config);
  setHandler(liveThrottleQuery, () => ({ throttle: state.throttle, activeCopies: state.fullLoad?.activeCopies ?? 0 }));
  setHandler(throttleSignal, (t) => {
    state.throttle = { ...state.throttle, ...t };
    show();
  });
  setHandler(pauseSignal, () => {
    state.paused = true;
    show();
  });
  // Skip a captured DDL entry (pgshift ddl skip): the next apply round passes it by; the signal is the record in the history.
  setHandler(ddlSkipSignal, (entry: number) => {
    if (!state.capture || !Number.isSafeInteger(entry) || entry <= 0) return;
    const d = (state.capture.ddl ??= newDdlProgress());
    if (!d.skipped.includes(entry)) d.skipped.push(entry);
    // Status no longer shows the apply stopped at it: the next round (started at once) passes it by.
    if (d.blocked?.entry === entry) d.blocked = null;
    d.skipped.splice(0, Math.max(0, d.skipped.length - 200));
    show();
  });
  setHandler(resumeSignal, () => {
    state.paused = false;
    show();
  });
  // Cutover: the update answers (its validator refuses with the reason, nothing enters the history);
  // the signal cannot answer, so a refusal is recorded for status.
  const cutoverChoice = (req?: CutoverRequest) => ({ fence: req?.fence ?? config.cutover.fence, verify: req?.verify ?? config.cutover.verify });
  const invalidChoice = (req?: CutoverRequest): string | null => {
    if (req?.fence !== undefined && !['none', 'read-only'].includes(req.fence)) return `fence ${JSON.stringify(req.fence)}: expected none or read-only`;
    if (req?.verify !== undefined && !['changed', 'full', 'none'].includes(req.verify))
      return `verify ${JSON.stringify(req.verify)}: expected changed, full or none`;
    return null;
  };
  const refusal = (req?: CutoverRequest) => invalidChoice(req) ?? cutoverRefusal(state, config, cutoverChoice(req));
  // Stopped at a DDL it cannot replay, the apply would never drain past it: a fenced source would stay fenced.
  const ddlRefusal = (): string | null => {
    const b = state.capture?.ddl?.blocked;
    return b
      ? `the apply is stopped at DDL entry ${b.entry} (${b.tag} at LSN ${b.lsn}): fix the destination by hand if needed, then pgshift ddl skip ${config.name} ${b.entry}`
      : null;
  };
  const acceptCutover = (req?: CutoverRequest) => {
    const choice = cutoverChoice(req);
    state.cutover = newCutover(new Date().toISOString(), (state.cutover?.attempt ?? 0) + 1, choice.fence, choice.verify);
    state.cutoverRefused = null;
    show();
    return choice;
  };
  setHandler(requestCutoverUpdate, (req?: CutoverRequest) => ({ accepted: true as const, ...acceptCutover(req) }), {
    validator: (req?: CutoverRequest) => {
      // Validators do not run on replay: no patch needed here.
      const why = refusal(req) ?? ddlRefusal();
      if (why) throw new Error(why);
    },
  });
  setHandler(cutoverSignal, (req?: CutoverRequest) => {
    const why = refusal(req) ?? (state.capture?.ddl?.blocked && patched('cutover-refused-at-blocked-ddl') ? ddlRefusal() : null);
    if (why) {
      state.cutoverRefused = { at: new Date().toISOString(), reason: why };
      show();
    } else acceptCutover(req);
  });
  // Abort cancels the running activities at once; the phase loop then finishes as aborted.
  const work = new CancellationScope();
  setHandler(abortSignal, () => {
    // Once the destination is ready the application may be writing there: nothing is left to abort.
    if (state.cutover?.readyAt) {
      recordError(state, new Date().toISOString(), { message: 'abort ignored: the cutover has made the destination ready', type: 'AbortIgnored' });
      show();
      return;
    }
    state.abortRequested = true;
    work.cancel();
    show();
  });

  const enter = (phase: Phase) => {
    state.phase = phase;
    upsertSearchAttributes([{ key: SA_PHASE, value: phase }]);
    reportPhase(config.name, phase);
    show();
  };
  /** Wait while paused; false when an abort came in meanwhile. */
  const mayProceed = async () => {
    await condition(() => !state.paused || state.abortRequested);
    return !state.abortRequested;
  };
  /** Temporal suggests a new run when the history is long (tests may ask sooner). */
  const handOverSuggested = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= (input.continueAsNewAtHistoryLength ?? Infinity);
  const base: Omit<PhaseContext, 'apply'> = {
    config,
    state,
    acts,
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    src,
    dst,
    show,
    mayProceed,
    stopReason: () => (state.abortRequested ? ABORTED : handOverSuggested() ? CONTINUE_AS_NEW : null),
    continueAsNewAfterChunks: input.continueAsNewAfterChunks,
    fullLoadPageChunks: input.fullLoadPageChunks,
  };
  const ctx: PhaseContext = { ...base, apply: applyLane(base) };

  /** The enabled phases from the current one on, until one does not end with done. */
  const runPhases = async (): Promise<PhaseOutcome> => {
    for (let i = Math.max(0, PHASES.indexOf(state.phase as RunnablePhase)); i < PHASES.length; i++) {
      const phase = PHASES[i];
      if (phase === 'done') break;
      if (!phaseEnabled(phase, config.mode, config.verification)) continue;
      if (!(await mayProceed())) return ABORTED;
      // Past the keys the apply runs in the background, through every later phase but the cutover, which drains it itself.
      // The catch-up starts it itself once the consistency point is known, so that the first round stops there.
      const laneStartsItself = phase === 'cutover' || (phase === 'catch-up' && patched('catch-up-round-stops-at-consistency'));
      if (config.mode.incremental && i >= PHASES.indexOf('catch-up') && !laneStartsItself) ctx.apply.start();
      enter(phase);
      const outcome = await PHASE_RUNNERS[phase](ctx);
      const applyFailure = ctx.apply.failure();
      if (applyFailure) throw applyFailure;
      if (outcome.kind === 'back-to') {
        i = PHASES.indexOf(outcome.phase) - 1;
        continue;
      }
      if (outcome.kind !== 'done') return outcome; // a continue-as-new resumes this phase
      if (handOverSuggested()) {
        state.phase = PHASES[i + 1];
        return CONTINUE_AS_NEW;
      }
    }
    return DONE;
  };

  /**
   * The source's capture objects (and a fence this migration set, unless the
   * destination is ready) removed when the migration ends without its cutover;
   * a release that cannot reach the source is reported, with the command that finishes it.
   */
  const releaseAfterEnding = async () => {
    if (!state.capture || state.cutover?.finishedAt) return;
    await CancellationScope.nonCancellable(async () => {
      try {
        await acts.releaseSource.executeWithOptions(
          { startToCloseTimeout: '5m', scheduleToCloseTimeout: '15m', summary: `drop slot ${state.capture!.slot}, publication and control schema on ${src}` },
          [{ config, keepFence: !!state.cutover?.readyAt }],
        );
      } catch (e) {
        recordError(state, new Date().toISOString(), {
          message: `the source could not be released (${rootCause(e).message}): run pgshift release --config <file>`,
          type: 'ReleaseFailed',
        });
      }
    });
  };

  show();
  let outcome: PhaseOutcome;
  try {
    outcome = await work.run(runPhases);
  } catch (err) {
    await CancellationScope.nonCancellable(() => ctx.apply.stop());
    if (!state.abortRequested) {
      // Status, current details and the workflow's failure all say what failed, not "Activity task failed".
      recordError(state, new Date().toISOString(), rootCause(err));
      const alerted = isCancellation(err) ? null : alertOnFailure(acts, config, state.phase, rootCause(err));
      // Failed or cancelled, the migration will not consume its slot again: release the source before it fills the disk.
      if (patched('release-source-on-every-ending')) await releaseAfterEnding();
      enter('failed');
      await alerted;
      // A cancelled workflow (not an abort) stays a cancellation.
      throw isCancellation(err) ? err : failureOf(err);
    }
    // Stopping for the abort: a cancellation is expected; anything else is noted, and the abort goes on.
    if (!isCancellation(err)) recordError(state, new Date().toISOString(), rootCause(err));
    outcome = ABORTED;
  }
  if (state.abortRequested) outcome = ABORTED;
  // The apply round in flight is cancelled and awaited: the next run (or the fence) never overlaps with it.
  await CancellationScope.nonCancellable(() => ctx.apply.stop());

  // The one place that acts on how the phases ended. Every activity they started has ended by now.
  switch (outcome.kind) {
    case 'continue-as-new':
      state.generation++;
      return continueAsNew<typeof MigrationWorkflow>({ ...input, state });
    case 'aborted': {
      // Outside the cancelled scope: fencing must happen even though the work was cancelled.
      state.abortCleanup = await CancellationScope.nonCancellable(() =>
        acts.abortDestination.executeWithOptions(
          { startToCloseTimeout: '30m', summary: `fence ${dst}${config.abort.dropCreatedObjects ? ' and drop what this migration created' : ''}` },
          [{ config }],
        ),
      );
      if (state.capture) {
        // Nothing will consume the slot again: drop it (and the publication, heartbeat and control schema)
        // before it holds back the source's WAL; a cutover's write fence is lifted with it.
        await CancellationScope.nonCancellable(() =>
          acts.releaseSource.executeWithOptions(
            { startToCloseTimeout: '30m', summary: `drop slot ${state.capture!.slot}, publication and control schema on ${src}` },
            [{ config }],
          ),
        );
      }
      state.finishedAt = new Date().toISOString();
      enter('aborted');
      return status();
    }
    case 'back-to': // handled in runPhases
    case 'done':
      state.finishedAt = new Date().toISOString();
      enter('done');
      return status();
  }
}
