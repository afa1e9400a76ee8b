// The change-capture activities as the worker registers them: retry windows
// like every activity that takes a config; a cancelled apply (cutover, abort,
// pause) reports the cancellation itself rather than a retryable failure.
import { CancelledFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { withRetryWindows } from '../retry';
import { applyChanges, type ApplyInput } from './apply';
import { prepareSource, releaseSource } from './prepare-source';

function cancelledReason(): CancelledFailure | undefined {
  try {
    const s = Context.current().cancellationSignal;
    return s.aborted && s.reason instanceof CancelledFailure ? s.reason : undefined;
  } catch {
    return undefined; // not in an activity
  }
}

export function captureActivities() {
  const apply = withRetryWindows((input: ApplyInput) => applyChanges(input));
  return {
    prepareSource: withRetryWindows(prepareSource),
    releaseSource: withRetryWindows(releaseSource),
    applyChanges: async (input: ApplyInput) => {
      try {
        return await apply(input);
      } catch (e) {
        throw cancelledReason() ?? e;
      }
    },
  };
}

export type { ApplyBeat, ApplyInput, ApplyResult } from './apply';
export type { PrepareSourceInput, PrepareSourceResult, ReleaseSourceResult } from './prepare-source';
