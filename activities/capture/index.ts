// The change-capture activities as the worker registers them: retry windows,
// like every activity that takes a config (createActivities adds the
// keep-alive and reports a cancelled apply as cancelled).
import { withRetryWindows } from '../retry';
import { applyChanges, type ApplyInput } from './apply';
import { sourceWalPosition } from './position';
import { prepareSource, releaseSource } from './prepare-source';

export function captureActivities() {
  return {
    prepareSource: withRetryWindows(prepareSource),
    releaseSource: withRetryWindows(releaseSource),
    applyChanges: withRetryWindows((input: ApplyInput) => applyChanges(input)),
    sourceWalPosition: withRetryWindows(sourceWalPosition),
  };
}

export type { ApplyBeat, ApplyInput, ApplyResult } from './apply';
export type { PrepareSourceInput, PrepareSourceResult, ReleaseSourceResult } from './prepare-source';
