// The cutover's activities as the worker registers them (retry windows, like
// every activity that takes a config). The drain and the fence check are
// change-apply rounds (activities/capture/apply.ts: stopAtLsn, fenceLsn).
import { withRetryWindows } from '../retry';
import { fenceDestination, refreshMaterializedViews } from './destination';
import { fenceSource, liftFence } from './fence-source';

export function cutoverActivities() {
  return {
    fenceSource: withRetryWindows(fenceSource),
    liftFence: withRetryWindows(liftFence),
    refreshMaterializedViews: withRetryWindows(refreshMaterializedViews),
    fenceDestination: withRetryWindows(fenceDestination),
  };
}

export type { FenceSourceResult } from './fence-source';
