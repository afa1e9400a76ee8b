// The verify phase: schema verification (catalogs compared in destination
// names) beside full data verification, which may hand over to the next run
// part-way (its progress is a cursor in the state). With change capture it is
// deferred (see VERIFY_WHILE_CHANGES_FLOW).
import { patched } from '@temporalio/workflow';
import { DONE, type PhaseContext, type PhaseOutcome } from './contract';
import { runDataVerification } from './data-verification';

/** Off: when turned on, behind patched('verify-while-changes-flow') (replay compatibility). */
const VERIFY_WHILE_CHANGES_FLOW = false;

export async function runVerify(ctx: PhaseContext): Promise<PhaseOutcome> {
  const { config, state, acts, src, dst, heartbeatTimeout } = ctx;
  // A run resuming the phase after a continue-as-new already has the schema compared.
  const verifySchema = async () => {
    if (!(config.mode.schema && config.verification.schema && !state.schema.verification)) return;
    state.schema.verification = await acts.verifySchema.executeWithOptions(
      { startToCloseTimeout: '30m', heartbeatTimeout, summary: `verify schema ${src} ↔ ${dst}` },
      [{ config }],
    );
    ctx.show();
  };
  // The catalogs are compared beside the rows rather than before them: the two read different things, and the
  // schema's comparison (~0.1 s at the bench, longer with many objects) was on the critical path.
  const beside = patched('verify-schema-beside-data');
  if (!beside) await verifySchema();
  const schemaCompared = beside ? verifySchema() : Promise.resolve();
  let outcome: PhaseOutcome;
  try {
    outcome = await verifyData(ctx);
  } catch (err) {
    await schemaCompared.catch(() => undefined); // the rows' failure is the one to report
    throw err;
  }
  await schemaCompared;
  return outcome;
}

async function verifyData(ctx: PhaseContext): Promise<PhaseOutcome> {
  const { config, state, acts, heartbeatTimeout } = ctx;
  if (!(config.mode.full && config.verification.full)) return DONE;
  // Not yet in the phase: under a busy workload each differing range waits for the apply (measured too slow with the
  // test workload, many small chunks); `pgshift verify --data` re-checks, and the cutover verifies at lag zero.
  if (config.mode.incremental && !VERIFY_WHILE_CHANGES_FLOW) {
    // The source keeps changing: a range compared now may differ only because the apply has not reached it yet.
    // Until ranges that differ are re-checked once the apply has passed them, comparing is left to `pgshift verify`
    // after the writes stop (or to cutover), where lag zero makes the comparison exact.
    state.dataVerificationDeferred = 'the source is still changing; run pgshift verify ID --data once writes stop and lag is zero (cutover verifies too)';
    ctx.show();
    return DONE;
  }
  // A cutover's `verify: changed` compares only the tables changed since this verification started.
  if (config.mode.incremental && !state.dataVerification) state.changedSince = { at: new Date().toISOString(), tables: [], many: false };
  const { outcome } = await runDataVerification({
    config,
    acts,
    heartbeatTimeout,
    resume: state.dataVerification,
    onStart: (v) => (state.dataVerification = v),
    onProgress: ctx.show,
    mayProceed: ctx.mayProceed,
    stopReason: ctx.stopReason,
    awaitAlert: true,
  });
  return outcome;
}
