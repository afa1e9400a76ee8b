// The precheck phase: every item pass / warn / fail; a failure or a warning
// nobody acknowledged stops the migration with a non-retryable error. The
// prepare phase: control objects and the fencing token on the destination and,
// with change capture, the slot on the source.
import { ApplicationFailure, patched } from '@temporalio/workflow';
import { blockingItems } from '../../lib/migration-state';
import { prepareCapture } from './incremental';
import { DONE, type PhaseContext, type PhaseOutcome } from './contract';

export async function runPrecheck({ config, state, acts, src, dst }: PhaseContext): Promise<PhaseOutcome> {
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
  return DONE;
}

/** Control schema and this run's fencing token on the destination. */
export async function runPrepare(ctx: PhaseContext): Promise<PhaseOutcome> {
  const { config, state, acts, dst } = ctx;
  await acts.prepareDestination.executeWithOptions({ startToCloseTimeout: '5m', summary: `control schema and fencing token on ${dst}` }, [
    { config, runToken: state.runToken },
  ]);
  // The slot before any chunk's snapshot, so the stream holds every change the copy may miss.
  if (config.mode.incremental && patched('change-capture')) await prepareCapture(ctx);
  return DONE;
}
