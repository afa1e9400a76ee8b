// Incremental-verification progress as the workflow keeps it (over
// continue-as-new): counters of the verifier's rounds
// (activities/verify-incremental.ts), the apply's queueing counters
// (activities/capture/touched.ts: queued vs left out by sampling), and the
// latest mismatches, bounded.
// Pure: imported by workflow code and by the CLI.

export const MISMATCHES_KEPT = 20;

export interface IncrementalMismatchView {
  table: string;
  key: string[];
  problem: string;
  lsn: string;
  at: string;
}

export interface IncrementalVerification {
  startedAt: string;
  /** Rows compared (consistent or mismatched). */
  checked: number;
  mismatched: number;
  /** Differences whose row changed again before they could be settled: compared again later. */
  requeued: number;
  /** Keys waiting in the queue after the last round. */
  queued: number;
  rounds: number;
  /** Changed rows the apply queued, and those it left out because the change rate was over the budget. */
  recorded: number;
  skipped: number;
  /** The last apply round sampled (left some changed rows out). */
  sampling: boolean;
  /** verification.incrementalRowsPerSecond (null: every changed row). */
  budget: number | null;
  mismatches: IncrementalMismatchView[];
  /** The verifier stopped on a failure (the migration goes on). */
  failure?: string | null;
}

export function newIncrementalVerification(now: string, budget: number | null): IncrementalVerification {
  return { startedAt: now, checked: 0, mismatched: 0, requeued: 0, queued: 0, rounds: 0, recorded: 0, skipped: 0, sampling: false, budget, mismatches: [] };
}

export function recordVerifyRound(
  v: IncrementalVerification,
  r: { checked: number; mismatched: number; requeued: number; queued: number; mismatches: IncrementalMismatchView[] },
): void {
  v.rounds++;
  v.checked += r.checked;
  v.mismatched += r.mismatched;
  v.requeued += r.requeued;
  v.queued = r.queued;
  v.mismatches.push(...r.mismatches);
  if (v.mismatches.length > MISMATCHES_KEPT) v.mismatches.splice(0, v.mismatches.length - MISMATCHES_KEPT);
}

export function recordTouchedCounts(v: IncrementalVerification, t: { recorded: number; skipped: number }): void {
  v.recorded += t.recorded;
  v.skipped += t.skipped;
  v.sampling = t.skipped > 0;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Whether every changed row is compared or a sample, in words. */
export function samplingText(v: IncrementalVerification): string {
  if (!v.skipped) return `every changed row${v.budget === null ? '' : ` (budget ${fmt(v.budget)} rows/s)`}`;
  const share = (100 * v.recorded) / Math.max(1, v.recorded + v.skipped);
  return `${v.sampling ? 'sampling' : 'sampled earlier'}: the change rate exceeded the budget of ${fmt(v.budget ?? 0)} rows/s, ${share.toFixed(1)} % of changed rows queued (${fmt(v.skipped)} left out)`;
}

export function renderIncrementalVerification(v: IncrementalVerification): string[] {
  const lines = [
    `### Incremental verification: ${fmt(v.checked)} rows checked, ${v.mismatched ? `❌ ${fmt(v.mismatched)} mismatched` : '0 mismatched'}, ${fmt(v.requeued)} re-queued, ${fmt(v.queued)} queued · ${samplingText(v)}`,
  ];
  if (v.failure) lines.push(`- stopped: ${v.failure}`);
  for (const m of v.mismatches.slice(-5))
    lines.push(`- ❌ ${m.table} key (${m.key.join(', ')}): ${m.problem} (last applied change at LSN ${m.lsn}, found ${m.at})`);
  return lines;
}
