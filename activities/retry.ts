// Retry windows (seed: advanced settings). Temporal retries an activity on its
// own; this wrapper decides *for how long*, by failure class:
//  - connection failures: for retry.connectionMinutes since the activity began to fail;
//  - other failures (DDL/DML errors): for retry.otherMinutes since then;
//  - invalid input and fencing: never.
// Past its window a failure becomes non-retryable, with the window in its text.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../lib/config';
import { ConnectionSetupError, isConnectionError } from '../lib/io/pg';
import { FencedError } from './control';

export const FAILURE = {
  connection: 'ConnectionError',
  operation: 'OperationError',
  invalidInput: 'InvalidInput',
  fenced: 'Fenced',
  windowExceeded: 'RetryWindowExceeded',
  /** The destination no longer holds what the source's changes apply to (a keyless row to update or delete is missing). */
  divergence: 'Divergence',
} as const;

type FailureClass = 'connection' | 'other';
/** What a failed attempt leaves in its last heartbeat for the next attempt: when each class of failures began (ms since the epoch). */
type FailureBeat = { failingSince: Partial<Record<FailureClass, number>> };

function activityInfo() {
  try {
    return Context.current().info;
  } catch {
    return null; // outside an activity (direct calls in tests)
  }
}

/**
 * When failures of this class began: now on a first attempt; on a retry, what
 * the failed attempts left in their last heartbeat — so an index build that
 * fails after two hours gets its whole window, and a connection outage does
 * not use up the other-failure window —, else (nothing recorded) when the
 * activity was first scheduled.
 */
function failingSince(kind: FailureClass): { since: number; recorded: FailureBeat['failingSince'] } {
  const info = activityInfo();
  if (!info || info.attempt <= 1) return { since: Date.now(), recorded: {} };
  const beat = info.heartbeatDetails as Partial<FailureBeat> | null | undefined;
  const recorded = beat?.failingSince && typeof beat.failingSince === 'object' ? beat.failingSince : null;
  if (!recorded) return { since: info.scheduledTimestampMs, recorded: {} };
  return { since: typeof recorded[kind] === 'number' ? recorded[kind] : Date.now(), recorded };
}

/** Leave when the failures began for the next attempt (the worker flushes a failed attempt's last beat). */
function recordFailingSince(failingSince: FailureBeat['failingSince']): void {
  try {
    Context.current().heartbeat({ failingSince } satisfies FailureBeat);
  } catch {
    // outside an activity
  }
}

/**
 * An error's message with its SQLSTATE (or system error code) appended, as the operator reads it; a
 * constraint violation's key from the server's detail too (`Key (id)=(5) already exists.`): a deferred
 * constraint fails at COMMIT, where nothing else names the row.
 */
export function withCode(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code || message.endsWith(`[${code}]`)) return message;
  const detail = (err as { detail?: unknown } | null)?.detail;
  const key = typeof detail === 'string' && detail.startsWith('Key (') && !message.includes(detail) ? ` (${detail.slice(0, 500)})` : '';
  return `${message}${key} [${code}]`;
}

/** Put the object an error is about (a table, a chunk, a sequence) in front of its message; its code stays for the classification. */
export function about(what: string, err: unknown): unknown {
  if (err instanceof Error && !(err instanceof ApplicationFailure) && !err.message.startsWith(what)) err.message = `${what}: ${err.message}`;
  return err;
}

/** Past its window (counted from `since`, default as recorded by the activity's attempts) a failure is non-retryable. */
export function classifyFailure(err: unknown, retry: Config['retry'], since?: number): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const message = withCode(err);
  if (err instanceof FencedError) return ApplicationFailure.nonRetryable(message, FAILURE.fenced);
  if (err instanceof ConnectionSetupError && !err.transient) return ApplicationFailure.nonRetryable(message, FAILURE.invalidInput);
  const connection = isConnectionError(err);
  const kind: FailureClass = connection ? 'connection' : 'other';
  const window = connection ? retry.connectionMinutes : retry.otherMinutes;
  const start = since ?? failingSince(kind).since;
  if ((Date.now() - start) / 60_000 >= window) {
    return ApplicationFailure.nonRetryable(
      `${message} (still failing after the ${window}-minute ${connection ? 'connection' : 'other-failure'} retry window)`,
      FAILURE.windowExceeded,
    );
  }
  return ApplicationFailure.retryable(message, connection ? FAILURE.connection : FAILURE.operation);
}

/** Wrap an activity whose input carries the config, applying the retry windows to its failures. */
export function withRetryWindows<I extends { config: Pick<Config, 'retry'> }, R>(fn: (input: I) => Promise<R>): (input: I) => Promise<R> {
  return async (input: I) => {
    try {
      return await fn(input);
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      const kind: FailureClass = isConnectionError(err) ? 'connection' : 'other';
      const { since, recorded } = failingSince(kind);
      const failure = classifyFailure(err, input.config.retry, since);
      if (!failure.nonRetryable) recordFailingSince({ ...recorded, [kind]: since });
      throw failure;
    }
  };
}
