// pgshift's custom search attributes: find a migration in the Temporal UI by
// phase, source, destination, environment tag or how far the change apply lags. Imported by workflow code,
// so this module must stay free of I/O.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SA_PHASE = defineSearchAttributeKey('PgshiftPhase', SearchAttributeType.KEYWORD);
export const SA_SOURCE = defineSearchAttributeKey('PgshiftSource', SearchAttributeType.KEYWORD);
export const SA_DESTINATION = defineSearchAttributeKey('PgshiftDestination', SearchAttributeType.KEYWORD);
export const SA_ENVIRONMENT = defineSearchAttributeKey('PgshiftEnvironment', SearchAttributeType.KEYWORD);

/** Lag of the change apply as a bucket (`<1s` … `>=10m`), so lagging migrations can be listed in the UI. */
export const SA_LAG_BUCKET = defineSearchAttributeKey('PgshiftLagBucket', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [SA_PHASE, SA_SOURCE, SA_DESTINATION, SA_ENVIRONMENT, SA_LAG_BUCKET];

/** Upper bounds (seconds, exclusive) of the lag buckets, in order; past the last one the bucket is `>=10m`. */
const LAG_BUCKETS: [number, string][] = [
  [1, '<1s'],
  [10, '<10s'],
  [60, '<1m'],
  [600, '<10m'],
];

/** The search-attribute bucket of a lag in seconds (an unknown lag has none). */
export function lagBucket(seconds: number | null): string | null {
  if (seconds === null || !Number.isFinite(seconds)) return null;
  return LAG_BUCKETS.find(([max]) => seconds < max)?.[1] ?? '>=10m';
}

/** `temporal` CLI spelling of a type, for start-dev flags and admin instructions. */
export const cliType = (t: string): string => t.charAt(0) + t.slice(1).toLowerCase();
