// MigrationWorkflow: a state machine over one explicit MigrationState (see
// lib/migration-state.ts). Each phase is one or more activities; signals only
// change the state; the state is handed to the next run on continue-as-new so
// a migration that runs for weeks keeps a bounded history.
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  continueAsNew,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
export * from './definitions';
import type { Config } from '../lib/config';
import {
  abortSignal,
  configQuery,
  fullLoadThrottleQuery,
  MigrationStatus,
  pauseSignal,
  resumeSignal,
  statusQuery,
  throttleSignal,
} from './definitions';
import {
  blockingItems,
  initialState,
  MigrationInput,
  MigrationState,
  Phase,
  PHASES,
  phaseEnabled,
  recordError,
  renderStatusMarkdown,
  SchemaStage,
  Throttle,
} from '../lib/migration-state';
import { unavailableModes } from '../lib/availability';
import { endpointLabel } from '../lib/migration-ids';
import { SA_PHASE } from '../lib/search-attributes';
import { runFullLoad } from './phases/full-load';
import { runDataVerification } from './phases/data-verification';

/** Activities beat every ≤ 5 s (activities/heartbeat.ts): 15 s without one means the worker is gone. */
const HEARTBEAT_TIMEOUT = '15s' as const;

/** Activity options by the kind of work: short catalog work vs long data work that heartbeats. */
function activities(config: Config) {
  // Retry windows are enforced inside the activities (activities/retry.ts); here
  // Temporal only paces the attempts and detects dead workers by heartbeat.
  const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' } as const;
  const windowMs = config.retry.connectionMinutes * 60_000;
  return proxyActivities<Activities>({
    startToCloseTimeout: '2h',
    // A killed worker is noticed when its heartbeats stop: keep this short so
    // its work moves to another worker quickly (activities beat every few seconds).
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    scheduleToCloseTimeout: windowMs + 3 * 3_600_000,
    retry,
  });
}

export async function MigrationWorkflow(input: MigrationInput): Promise<MigrationStatus> {
  const { config } = input;
  const state: MigrationState = input.state ?? initialState(config, uuid4(), new Date().toISOString());
  const acts = activities(config);
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
  setHandler(fullLoadThrottleQuery, () => ({ throttle: state.throttle, activeCopies: state.fullLoad?.activeCopies ?? 0 }));
  setHandler(throttleSignal, (t) => {
    state.throttle = { ...state.throttle, ...t };
    show();
  });
  setHandler(pauseSignal, () => {
    state.paused = true;
    show();
  });
  setHandler(resumeSignal, () => {
    state.paused = false;
    show();
  });
  // Abort cancels the running activities at once; the phase loop then finishes as aborted.
  const work = new CancellationScope();
  setHandler(abortSignal, () => {
    state.abortRequested = true;
    work.cancel();
    show();
  });

  const enter = (phase: Phase) => {
    state.phase = phase;
    upsertSearchAttributes([{ key: SA_PHASE, value: phase }]);
    show();
  };
  /** Wait while paused; false when an abort came in meanwhile. */
  const mayProceed = async () => {
    await condition(() => !state.paused || state.abortRequested);
    return !state.abortRequested;
  };

  const runPhase = async (phase: Phase): Promise<void> => {
    switch (phase) {
      case 'precheck': {
        const items = await acts.precheck.executeWithOptions(
          { startToCloseTimeout: '10m', heartbeatTimeout: '2m', retry: { maximumAttempts: 3 }, summary: `precheck ${src} → ${dst}` },
          [{ config }],
        );
        state.precheck = items;
        const blocking = blockingItems(items);
        if (blocking.length) {
          throw ApplicationFailure.nonRetryable(
            `precheck failed: ${blocking.map((i) => `${i.id} (${i.verdict}${i.verdict === 'warn' ? ', not acknowledged' : ''}): ${i.cause}`).join('; ')}`,
            'PrecheckFailed',
          );
        }
        return;
      }
      case 'prepare':
        await acts.prepareDestination.executeWithOptions(
          { startToCloseTimeout: '5m', summary: `control schema and fencing token on ${dst}` },
          [{ config, runToken: state.runToken }],
        );
        return;
      case 'schema': {
        const plan = await acts.planSchema.executeWithOptions(
          { startToCloseTimeout: '30m', heartbeatTimeout: HEARTBEAT_TIMEOUT, summary: `plan schema of ${src} from its catalogs` },
          [{ config, runToken: state.runToken }],
        );
        state.schema.statements = plan.statements;
        state.schema.byKind = plan.byKind;
        state.schema.warnings = plan.warnings.slice(0, 50);
        await applyStage('before-data', plan.byStage['before-data']);
        return;
      }
      case 'keys':
        await applyStage('keys');
        return;
      case 'post-data':
        await applyStage('post-data');
        return;
      case 'full-load':
        if (
          (await runFullLoad({ config, state, acts, heartbeatTimeout: HEARTBEAT_TIMEOUT, mayProceed, show, continueAsNewAfterChunks: input.continueAsNewAfterChunks })) ===
          'continue-as-new'
        ) {
          state.generation++;
          await continueAsNew<typeof MigrationWorkflow>({ ...input, state });
        }
        return;
      case 'sequences':
        state.sequences = (
          await acts.syncSequences.executeWithOptions({ startToCloseTimeout: '30m', summary: `set sequences on ${dst} from ${src}` }, [
            { config, runToken: state.runToken },
          ])
        ).sequences;
        return;
      case 'analyze':
        await acts.analyzeTables.executeWithOptions({ startToCloseTimeout: '6h', summary: `ANALYZE the copied tables on ${dst}` }, [{ config }]);
        return;
      case 'verify':
        if (config.mode.schema && config.verification.schema) {
          state.schema.verification = await acts.verifySchema.executeWithOptions(
            { startToCloseTimeout: '30m', heartbeatTimeout: HEARTBEAT_TIMEOUT, summary: `verify schema ${src} ↔ ${dst}` },
            [{ config }],
          );
        }
        if (config.mode.full && config.verification.full) await verifyData();
        return;
      default:
        return;
    }
  };

  const verifyData = async () => {
    await runDataVerification({ config, acts, heartbeatTimeout: HEARTBEAT_TIMEOUT, onStart: (v) => (state.dataVerification = v), onProgress: show, mayProceed });
  };

  const applyStage = async (stage: SchemaStage, planned?: number) => {
    state.schema.stages[stage] = await acts.applySchemaStage.executeWithOptions(
      { startToCloseTimeout: '6h', heartbeatTimeout: HEARTBEAT_TIMEOUT, summary: `schema ${stage}${planned !== undefined ? `: ${planned} statements` : ''}` },
      [{ config, runToken: state.runToken, stage }],
    );
  };

  show();
  const unavailable = unavailableModes(config);
  if (unavailable.length) {
    recordError(state, new Date().toISOString(), unavailable.join('; '));
    enter('failed');
    throw ApplicationFailure.nonRetryable(unavailable.join('; '), 'InvalidInput');
  }
  try {
    await work.run(async () => {
      for (let i = Math.max(0, PHASES.indexOf(state.phase as (typeof PHASES)[number])); i < PHASES.length; i++) {
        const phase = PHASES[i];
        if (!phaseEnabled(phase, config.mode, config.verification)) continue;
        if (phase === 'done') break;
        if (!(await mayProceed())) return;
        enter(phase);
        await runPhase(phase);
        if (workflowInfo().continueAsNewSuggested && i + 1 < PHASES.length) {
          state.phase = PHASES[i + 1];
          state.generation++;
          await continueAsNew<typeof MigrationWorkflow>({ ...input, state });
        }
      }
    });
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err; // the hand-over to the next run, not a failure
    if (!(state.abortRequested && isCancellation(err))) {
      recordError(state, new Date().toISOString(), (err as Error).message);
      enter('failed');
      throw err;
    }
  }
  if (state.abortRequested) {
    // Outside the cancelled scope: fencing must happen even though the work was cancelled.
    const cleanup = await CancellationScope.nonCancellable(() =>
      acts.abortDestination.executeWithOptions(
        { startToCloseTimeout: '30m', summary: `fence ${dst}${config.abort.dropCreatedObjects ? ' and drop what this migration created' : ''}` },
        [{ config }],
      ),
    );
    state.abortCleanup = cleanup;
  }
  state.finishedAt = new Date().toISOString();
  enter(state.abortRequested ? 'aborted' : 'done');
  return status();
}
