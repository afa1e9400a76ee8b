// Retry windows (seed: advanced settings). Temporal retries an activity on its
// own; this wrapper decides *for how long*, by failure class:
//  - connection failures: for retry.connectionMinutes since the first attempt;
//  - other failures (DDL/DML errors): for retry.otherMinutes;
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

function elapsedMinutes(): number {
  try {
    return (Date.now() - Context.current().info.scheduledTimestampMs) / 60_000;
  } catch {
    return 0; // outside an activity (direct calls in tests)
  }
}

/** An error's message with its SQLSTATE (or system error code) appended, as the operator reads it. */
export function withCode(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code && !message.endsWith(`[${code}]`) ? `${message} [${code}]` : message;
}

/** Put the object an error is about (a table, a chunk, a sequence) in front of its message; its code stays for the classification. */
export function about(what: string, err: unknown): unknown {
  if (err instanceof Error && !(err instanceof ApplicationFailure) && !err.message.startsWith(what)) err.message = `${what}: ${err.message}`;
  return err;
}

export function classifyFailure(err: unknown, retry: Config['retry']): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const message = withCode(err);
  if (err instanceof FencedError) return ApplicationFailure.nonRetryable(message, FAILURE.fenced);
  if (err instanceof ConnectionSetupError && !err.transient) return ApplicationFailure.nonRetryable(message, FAILURE.invalidInput);
  const connection = isConnectionError(err);
  const window = connection ? retry.connectionMinutes : retry.otherMinutes;
  if (elapsedMinutes() >= window) {
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
      throw classifyFailure(err, input.config.retry);
    }
  };
}
