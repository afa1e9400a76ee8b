// Full-load progress as the workflow keeps it: whole-load totals and a bounded
// view of the tables for status (the largest ones and the ones copying now).
// Which chunk of which table is done lives on the destination (pgshift.chunks),
// read a page at a time (FullLoadPage), so the state — the input of every
// continue-as-new — stays the same size whatever the number of tables.
// Pure: imported by workflow code and by the CLI.

/** Tables the status view shows besides the ones copying now. */
export const STATUS_TABLES = 20;

export interface TableProgress {
  display: string;
  chunks: number;
  chunksDone: number;
  estimatedRows: number;
  estimatedBytes: number;
  rows: number;
  bytes: number;
}

export interface FullLoadTotals {
  tables: number;
  tablesDone: number;
  chunks: number;
  chunksDone: number;
  rows: number;
  bytes: number;
  estimatedBytes: number;
}

export interface FullLoadProgress {
  startedAt: string;
  finishedAt: string | null;
  /** Copies running right now (the throttle is shared among them). */
  activeCopies: number;
  /** Chunks copied again because an attempt had failed or its worker died. */
  retriedChunks: number;
  totals: FullLoadTotals;
  /** Status view by table key: the STATUS_TABLES largest tables and the ones copying now. */
  tables: Record<string, TableProgress>;
}

/** A table with chunks still to copy, as one page of the plan lists it. */
export interface PageTable extends TableProgress {
  key: string;
  /** Destination name in display syntax. */
  target: string;
  /** Chunk numbers still to copy. */
  pending: number[];
}

/** One page of the full-load plan, read from the destination's chunk table. */
export interface FullLoadPage {
  totals: FullLoadTotals;
  /** The STATUS_TABLES largest tables with their progress. */
  largest: (TableProgress & { key: string })[];
  /** Whole tables with chunks to copy, in copy order (the most index-build work first, then the largest). */
  tables: PageTable[];
  /** Copy-order position of the page's last table: the next page starts after it (null: no table left). */
  last: number | null;
  /** Copied tables whose keys and indexes are not built yet (asked for with `backlog`). */
  toIndex: string[];
}

export function newFullLoadProgress(now: string): FullLoadProgress {
  return {
    startedAt: now,
    finishedAt: null,
    activeCopies: 0,
    retriedChunks: 0,
    totals: { tables: 0, tablesDone: 0, chunks: 0, chunksDone: 0, rows: 0, bytes: 0, estimatedBytes: 0 },
    tables: {},
  };
}

/**
 * The bookkeeping of one run of the full load. Totals and the largest tables
 * come from the first page of the run (nothing is in flight then); every chunk
 * that lands afterwards is counted here. A table is in the status view from
 * its first chunk's start to its last chunk's landing (chunks are queued table
 * by table, so only about `parallelism.tables` tables are partly copied at a time).
 */
export class FullLoadTracker {
  private readonly largest = new Set<string>();
  private readonly queuedTables = new Map<string, { progress: TableProgress; left: number }>();

  constructor(private readonly f: FullLoadProgress) {}

  startRun(page: FullLoadPage): void {
    this.f.totals = { ...page.totals };
    this.f.tables = {};
    for (const { key, ...t } of page.largest) {
      this.largest.add(key);
      this.f.tables[key] = t;
    }
  }

  /** A page's table is queued: its chunks are counted down as they land. */
  queued(t: PageTable): void {
    const { key, target: _target, pending, ...progress } = t;
    this.queuedTables.set(key, { progress: this.f.tables[key] ?? progress, left: pending.length });
  }

  started(key: string): void {
    this.f.tables[key] = this.queuedTables.get(key)!.progress;
  }

  /** Count a landed chunk; true when it was the table's last one. */
  landed(key: string, r: { rows: number; bytes: number }): boolean {
    const q = this.queuedTables.get(key)!;
    q.left--;
    q.progress.chunksDone++;
    q.progress.rows += r.rows;
    q.progress.bytes += r.bytes;
    const t = this.f.totals;
    t.chunksDone++;
    t.rows += r.rows;
    t.bytes += r.bytes;
    if (q.left > 0) return false;
    t.tablesDone++;
    this.queuedTables.delete(key);
    if (!this.largest.has(key)) delete this.f.tables[key];
    return true;
  }
}
