// Data-verification progress as the workflow keeps it: counters, a cursor into
// the size-ordered list of copied tables, and a bounded view of the results
// (inconsistent tables first, then the largest consistent ones), so the state
// stays the same size whatever the number of tables.
// Pure: imported by workflow code and by the CLI.

/** Results kept in the view (every inconsistent table up to this many, then consistent ones). */
export const VERIFICATION_VIEW = 50;

export interface TableDataVerification {
  display: string;
  rowsSource: number;
  rowsDestination: number;
  consistent: boolean;
  differingKeys: { key: string[]; problem: string }[];
  /** e.g. "835,266 rows in app.t1 compared, consistent" */
  summary: string;
}

export interface DataVerification {
  startedAt: string;
  finishedAt: string | null;
  /** Tables to compare (the copied tables). */
  total: number;
  /** Tables compared so far: the first `compared` of the size-ordered list. */
  compared: number;
  inconsistent: number;
  rowsSource: number;
  rowsDestination: number;
  /** Results by table key, bounded to VERIFICATION_VIEW: inconsistent tables first, then the largest consistent ones. */
  tables: Record<string, TableDataVerification>;
}

export function newDataVerification(now: string): DataVerification {
  return { startedAt: now, finishedAt: null, total: 0, compared: 0, inconsistent: 0, rowsSource: 0, rowsDestination: 0, tables: {} };
}

/** Count one table's result and keep it in the view if it belongs there. */
export function recordTableResult(v: DataVerification, key: string, r: TableDataVerification): void {
  v.compared++;
  v.rowsSource += r.rowsSource;
  v.rowsDestination += r.rowsDestination;
  if (!r.consistent) v.inconsistent++;
  const entries = Object.entries(v.tables);
  if (entries.length < VERIFICATION_VIEW) {
    v.tables[key] = r;
    return;
  }
  if (r.consistent) return; // tables come largest first: the view already holds larger consistent ones
  // An inconsistent table takes the place of the smallest (last compared) consistent one.
  const consistent = entries.filter(([, t]) => t.consistent);
  if (!consistent.length) return;
  delete v.tables[consistent[consistent.length - 1][0]];
  v.tables[key] = r;
}

/**
 * Results of tables compared out of order (parallel lanes) wait here until
 * every table before them is compared, so `compared` is always a cursor: a
 * run that hands over mid-way resumes exactly after it.
 */
export class VerificationCursor {
  private readonly waiting = new Map<number, { key: string; r: TableDataVerification }>();

  constructor(private readonly v: DataVerification) {}

  done(index: number, key: string, r: TableDataVerification): void {
    this.waiting.set(index, { key, r });
    for (let next = this.waiting.get(this.v.compared); next; next = this.waiting.get(this.v.compared)) {
      this.waiting.delete(this.v.compared);
      recordTableResult(this.v, next.key, next.r);
    }
  }
}
