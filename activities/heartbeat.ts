// Heartbeats. Every activity gets a keep-alive beat every second while it
// runs, so a long single statement (an index build, a digest of a large range)
// never looks like a dead worker, a worker that does die is noticed within
// the heartbeat timeout, and a cancellation (which Temporal delivers with the
// answer to a heartbeat) reaches the activity within the worker's heartbeat
// throttle interval. Progress beats carry details for the UI.
import { Context } from '@temporalio/activity';

// The last progress details of each running activity, resent by the keep-alive
// so it never blanks what the UI shows.
const lastDetails = new WeakMap<Context, unknown>();
// Who else reads a running activity's progress beats (the worker's metrics).
const observers = new WeakMap<Context, (details: unknown) => void>();

function current(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // not in an activity (direct calls in tests)
  }
}

/** Heartbeat with progress details; a no-op outside an activity. */
export function heartbeat(details?: unknown): void {
  const ctx = current();
  if (!ctx) return;
  if (details !== undefined) {
    lastDetails.set(ctx, details);
    observers.get(ctx)?.(details);
  }
  ctx.heartbeat(details ?? lastDetails.get(ctx));
}

/** Pass every progress beat of the current activity to `fn` too; a no-op outside an activity. */
export function observeBeats(fn: (details: unknown) => void): void {
  const ctx = current();
  if (ctx) observers.set(ctx, fn);
}

/** The worker sends at most one beat per throttle interval (3 s); beating more often locally costs nothing. */
export const KEEPALIVE_MS = 1_000;

/** Wrap an activity so it beats every KEEPALIVE_MS for as long as it runs. */
export function withKeepalive<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    const timer = setInterval(() => heartbeat(), KEEPALIVE_MS);
    try {
      return await fn(...args);
    } finally {
      clearInterval(timer);
    }
  };
}
