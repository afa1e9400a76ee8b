// The precheck phase: every item pass / warn / fail; a failure or a warning
// nobody acknowledged stops the migration with a non-retryable error.
import { ApplicationFailure } from '@temporalio/workflow';
import { blockingItems } from '../../lib/migration-state';
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
export async function runPrepare({ config, state, acts, dst }: PhaseContext): Promise<PhaseOutcome> {
  await acts.prepareDestination.executeWithOptions({ startToCloseTimeout: '5m', summary: `control schema and fencing token on ${dst}` }, [
    { config, runToken: state.runToken },
  ]);
  return DONE;
}
