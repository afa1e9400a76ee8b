// The touched-key queue for incremental verification (activities/verify-incremental.ts):
// the apply records the key of every row it writes in pgshift.touched on the
// destination, in the same destination transaction as the data, with the LSN
// of the source transaction that wrote it (upserted: a key changed again gets
// the newer LSN). A key is therefore in the queue only once the apply has
// applied it, and its LSN moves whenever the apply touches the row again —
// the verifier's "changed meanwhile" signal.
//
// Budget (verification.incrementalRowsPerSecond): keys are queued at most at
// that rate (a token bucket, one second of burst). Over it, keys are sampled
// (each kept with the probability the budget leaves) and the rest counted as
// skipped; a skipped key that is already in the queue (being verified) still
// gets its LSN moved — one index probe, no insert — so the verifier never
// misses that a row it is comparing changed. A TRUNCATE moves the LSN of every
// queued key of the table.
import type { Client } from 'pg';
import type { TableBatch } from '../../lib/capture/batch';
import { formatLsn, type Lsn } from '../../lib/capture/lsn';
import { type ApplyTable, textArrayLiteral } from '../../lib/capture/sql';
import { CONTROL_SCHEMA } from '../control';

export const TOUCHED = `${CONTROL_SCHEMA}.touched`;

export async function ensureTouchedTable(c: Client): Promise<void> {
  await c.query(`
    CREATE TABLE IF NOT EXISTS ${TOUCHED} (
      migration  text NOT NULL,
      table_key  text NOT NULL,
      row_key    text[] NOT NULL,
      lsn        pg_lsn NOT NULL,
      PRIMARY KEY (migration, table_key, row_key)
    )`);
}

/** The queue's name of a table: its copy-plan key, JSON of [schema, table] on the source. */
export const touchedTableKey = (t: Pick<ApplyTable, 'source'>) => JSON.stringify([t.source.schema, t.source.table]);

const cols = (n: number) => Array.from({ length: n }, (_, j) => `c${j}`);
const keyArrays = (n: number, from: number) => Array.from({ length: n }, (_, j) => `$${from + j}::text[]`).join(', ');

export interface TouchedCounts {
  /** Keys queued for verification. */
  recorded: number;
  /** Keys left out by sampling (the change rate was over the budget). */
  skipped: number;
}

export class TouchedRecorder {
  readonly counts: TouchedCounts = { recorded: 0, skipped: 0 };
  private tokens: number;
  private refilled = Date.now();

  constructor(
    private readonly migration: string,
    /** Keys per second queued at most (null: every key). */
    private readonly rowsPerSecond: number | null,
    private readonly random: () => number = Math.random,
  ) {
    this.tokens = rowsPerSecond ?? Infinity;
  }

  private allowance(n: number): number {
    if (this.rowsPerSecond === null) return n;
    const now = Date.now();
    this.tokens = Math.min(this.rowsPerSecond, this.tokens + ((now - this.refilled) / 1000) * this.rowsPerSecond);
    this.refilled = now;
    return Math.min(n, Math.floor(this.tokens));
  }

  /** Queue the keys of a collapsed piece (deleted keys too: the row must be gone on both sides), inside the apply's transaction. */
  async record(dst: Client, lsn: Lsn, tables: Map<ApplyTable, TableBatch>): Promise<void> {
    const at = formatLsn(lsn);
    for (const [t, batch] of tables) {
      if (!t.key.length || !batch.finals.size) continue;
      const keys = [...batch.finals.values()].map((f) => f.key);
      const allowed = this.allowance(keys.length);
      const p = allowed / keys.length;
      const kept: string[][] = [];
      const left: string[][] = [];
      for (const k of keys) (p >= 1 || (kept.length < allowed && this.random() < p) ? kept : left).push(k);
      this.tokens -= kept.length;
      this.counts.recorded += kept.length;
      this.counts.skipped += left.length;
      const n = t.key.length;
      const arrays = (ks: string[][]) => Array.from({ length: n }, (_, j) => textArrayLiteral(ks.map((k) => k[j])));
      const c = cols(n);
      if (kept.length) {
        await dst.query(
          `INSERT INTO ${TOUCHED} (migration, table_key, row_key, lsn)
           SELECT $1, $2, ARRAY[${c.join(', ')}], $3::pg_lsn FROM unnest(${keyArrays(n, 4)}) AS u(${c.join(', ')})
           ON CONFLICT (migration, table_key, row_key) DO UPDATE SET lsn = EXCLUDED.lsn`,
          [this.migration, touchedTableKey(t), at, ...arrays(kept)],
        );
      }
      if (left.length) {
        await dst.query(
          `UPDATE ${TOUCHED} AS q SET lsn = $3::pg_lsn FROM unnest(${keyArrays(n, 4)}) AS u(${c.join(', ')})
            WHERE q.migration = $1 AND q.table_key = $2 AND q.row_key = ARRAY[${c.map((x) => `u.${x}`).join(', ')}]`,
          [this.migration, touchedTableKey(t), at, ...arrays(left)],
        );
      }
    }
  }

  /** A TRUNCATE touches every row: the queued keys of the tables are marked changed. */
  async truncated(dst: Client, lsn: Lsn, tables: ApplyTable[]): Promise<void> {
    if (!tables.length) return;
    await dst.query(`UPDATE ${TOUCHED} SET lsn = $2::pg_lsn WHERE migration = $1 AND table_key = ANY($3::text[])`, [
      this.migration,
      formatLsn(lsn),
      tables.map(touchedTableKey),
    ]);
  }
}
