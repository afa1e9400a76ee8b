// The innermost cause of a failure. An activity failure reaches the workflow
// as ActivityFailure("Activity task failed") wrapping the activity's own
// ApplicationFailure, which names the object, the statement and the SQLSTATE:
// that one is what the operator needs to read, and what the migration's own
// failure repeats. Pure: imported by workflow code.
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';

export interface RootCause {
  message: string;
  /** ApplicationFailure type of the innermost failure (e.g. InvalidInput, PrecheckFailed); null for other errors. */
  type: string | null;
  nonRetryable: boolean;
  /** The activity that failed, when the failure came from one. */
  activity: string | null;
}

export function rootCause(err: unknown): RootCause {
  let activity: string | null = null;
  let e: unknown = err;
  for (let depth = 0; depth < 20; depth++) {
    if (e instanceof ActivityFailure) activity = e.activityType ?? activity;
    const cause = (e as { cause?: unknown } | null)?.cause;
    if (!cause) break;
    e = cause;
  }
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof ApplicationFailure) return { message, type: e.type ?? null, nonRetryable: e.nonRetryable ?? false, activity };
  return { message, type: null, nonRetryable: false, activity };
}

/**
 * The migration's own failure: the root cause's message, type and
 * retryability, with the whole chain as its cause (which activity, which attempt).
 */
export function failureOf(err: unknown): ApplicationFailure {
  const root = rootCause(err);
  if (err instanceof ApplicationFailure && err.message === root.message) return err;
  return ApplicationFailure.create({
    message: root.message,
    type: root.type ?? 'MigrationFailed',
    nonRetryable: root.nonRetryable,
    cause: err instanceof Error ? err : undefined,
  });
}
