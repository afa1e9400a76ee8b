// Cooperative cancellation of activities. Temporal delivers a cancellation
// with the answer to a heartbeat (every activity beats every second, see
// heartbeat.ts); every session the activity opened then has its statement
// cancelled and is closed (lib/io/cancel.ts), so the activity fails at once.
// Whatever it fails with then is reported as the cancellation itself: Temporal
// records the activity as cancelled, and never retries it.
import { CancelledFailure } from '@temporalio/common';
import { activityCancellation } from '../lib/io/cancel';

export function reportingCancellation<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      const signal = activityCancellation();
      if (signal?.aborted)
        throw signal.reason instanceof CancelledFailure
          ? signal.reason
          : new CancelledFailure('activity cancelled', [], err instanceof Error ? err : undefined);
      throw err;
    }
  };
}
