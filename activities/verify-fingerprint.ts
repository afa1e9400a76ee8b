// The cheap proof that a copied range is consistent, used by full data
// verification (activities/verify-data.ts) before its SQL digests:
//
//   (a) the destination's rows of the range, read with one COPY in the chunk's
//       format and fingerprinted by the worker (lib/copy-fingerprint.ts), equal
//       the fingerprint the copy took of the rows the source sent at the
//       chunk's snapshot S (recorded with the chunk's done mark);
//   (b) the source's range has not changed since S: one scan of the range
//       that renders and detoasts no value finds as many rows as the copy read
//       and no row version that S did not see.
//
// Why (a) and (b) prove destination = source, row for row, under the
// verification's rules. (b): a row version never changes once written (an
// update writes a new version, with the updating transaction as its xmin),
// and the range predicate and row filter are functions of the row's values.
// Every row version visible now whose xmin S saw committed was therefore
// visible in S and in the range at S: the source's range now is a subset of
// its range at S; with the same count it is the same set (a delete lowers the
// count, an insert or update adds a version S did not see). (a): the
// destination now holds exactly the rows, as COPY renders them, that the
// source sent at S (count and two independent hash sums; a collision of both
// has a probability of about 2^-64). Together: the destination's range now
// renders exactly as the source's range now.
//
// Rendering rules: text COPY renders each column with its output function
// under the data settings, one injective line per row, the same rule as the
// digests' ROW(...)::text. Binary COPY sends each column's binary form, which
// is exact for the column's type (numeric scale, -0, jsonb text all kept):
// equal bytes of the same type are the same value; the fast path requires the
// destination's column types to be the source's (a different type with an
// identical binary form, int4 and date say, is left to the digests).
//
// Whatever does not hold — no fingerprint (a chunk copied by an older version
// or with verification off), a different fingerprint (a tampered value, rows
// kept by existingTargetTables: ignore, the apply's changes), a changed source
// range, a table without key copied in several page ranges (the destination
// has no matching pages) — is no verdict: the range goes through the SQL
// digests, drill-down and re-check as before. The fast path only ever says
// "consistent", and only with both proofs.
import type { Client } from 'pg';
import { copyOutFramed } from '../lib/io/copy-relay';
import { copyOutTapped } from '../lib/io/copy-tap';
import { addFingerprints, CopyStreamFingerprint, parseFingerprint, sameFingerprint, type CopyFingerprint } from '../lib/copy-fingerprint';
import { ident } from '../lib/ident';
import type { CopyTable } from './full-load/tables';

/** What the done mark recorded for one chunk. */
export interface ChunkRecord {
  state: string;
  rows: string | null;
  snapshot: string | null;
  fingerprint: string | null;
}

/** The recorded fingerprint and snapshot xmin of a chunk that can be proved cheaply, or null. */
export function provable(c: ChunkRecord, t: CopyTable): { fp: CopyFingerprint; snapshot: string } | null {
  if (c.state !== 'done' || !c.snapshot) return null;
  const fp = parseFingerprint(c.fingerprint);
  return fp && fp.format === (t.binary ? 'binary' : 'text') ? { fp, snapshot: c.snapshot } : null;
}

/**
 * Binary rows compare only between columns of the same type: whether the
 * destination's columns (in copy order) have the source's types.
 */
export async function sameColumnTypes(dst: Client, table: string, columns: string[], sourceTypes: string[]): Promise<boolean> {
  const r = await dst.query<{ name: string; type: string }>(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
    [table],
  );
  const typeOf = new Map(r.rows.map((x) => [x.name, x.type]));
  return columns.every((c, i) => typeOf.get(c) === sourceTypes[i]);
}

/** The destination's fingerprint of a range: its rows read with one COPY, as the chunk copy read the source's. */
export async function destinationFingerprint(
  dst: Client,
  q: { table: string; columns: string[]; where: string; binary: boolean },
  onProgress?: (rows: number) => void,
): Promise<CopyFingerprint | null> {
  const cols = q.columns.map(ident).join(', ');
  // ONLY: the table's own rows, as the copy read them (inheritance children are tables of their own).
  const from = q.where === 'true' ? `${q.table} (${cols})` : `(SELECT ${cols} FROM ONLY ${q.table} WHERE ${q.where})`;
  const sql = `COPY ${from} TO STDOUT ${q.binary ? '(FORMAT binary)' : ''}`;
  const fp = new CopyStreamFingerprint(q.binary ? 'binary' : 'text');
  let beat = Date.now();
  const feed = (buf: Buffer) => {
    fp.feed(buf);
    if (onProgress && Date.now() - beat > 1000) {
      beat = Date.now();
      onProgress(fp.fp.rows);
    }
  };
  // Straight off the session's socket where it can be tapped (the verify sessions over plain TCP); else as a stream.
  if (!(await copyOutTapped(dst, sql, feed))) for await (const buf of dst.query(copyOutFramed(sql)) as AsyncIterable<Buffer>) feed(buf);
  return fp.result();
}

/** A whole table at least this large (8 KB pages: 64 MB) is read by two sessions, each half of its pages. */
const SPLIT_PAGES = 8192;

/**
 * The destination's fingerprint of a range, as destinationFingerprint; a whole
 * table of SPLIT_PAGES or more on PostgreSQL 14+ (TID range scans) is read as
 * two halves of its pages at once, the second on a session of its own
 * (`another`): the read, the CopyData and the hashing are what a comparison
 * spends its time on, and a large table compared alone (the last one, say)
 * leaves a core idle. The halves cover every page whatever the page count
 * (the split point is only an estimate's middle) and their fingerprints add up
 * to the table's (disjoint row sets). A row the destination moved between the
 * two reads (the apply updating it) is read twice or not at all: the
 * fingerprint differs and the range goes to the digests, never a wrong verdict.
 */
export async function destinationRangeFingerprint(
  dst: Client,
  q: { table: string; columns: string[]; where: string; binary: boolean },
  another: <T>(fn: (c: Client) => Promise<T>) => Promise<T>,
  onProgress?: (rows: number) => void,
  minPages = SPLIT_PAGES,
): Promise<CopyFingerprint | null> {
  const pages = q.where === 'true' ? await splitPages(dst, q.table) : 0;
  if (pages < Math.max(2, minPages)) return destinationFingerprint(dst, q, onProgress);
  const mid = `'(${Math.floor(pages / 2)},0)'::tid`;
  const rows = [0, 0];
  const half = (i: number) => (n: number) => {
    rows[i] = n;
    onProgress?.(rows[0] + rows[1]);
  };
  const parts = await Promise.all([
    destinationFingerprint(dst, { ...q, where: `ctid < ${mid}` }, half(0)),
    another((c) => destinationFingerprint(c, { ...q, where: `ctid >= ${mid}` }, half(1))),
  ]);
  return parts[0] && parts[1] ? addFingerprints([parts[0], parts[1]]) : null;
}

/** The table's page count (the planner's estimate) where its pages can be read in ranges (PostgreSQL 14+), else 0. */
async function splitPages(dst: Client, table: string): Promise<number> {
  const r = await dst.query<{ pages: number }>(
    `SELECT CASE WHEN current_setting('server_version_num')::int >= 140000 THEN greatest(relpages, 0) ELSE 0 END AS pages
       FROM pg_class WHERE oid = $1::regclass`,
    [table],
  );
  return r.rows[0]?.pages ?? 0;
}

const XID_SPACE = 4294967296n;
/** Beyond this many transactions since the snapshot, 32-bit xmin comparisons could wrap: no verdict. */
const MAX_XID_DISTANCE = 2n ** 31n - 10_000_000n;

/**
 * (b): whether the source's range (its WHERE, filter included) still holds
 * exactly the `rows` row versions that snapshot S saw. One scan; only xmin and
 * the predicate's columns are read. A row is "new" when S did not see its
 * xmin committed: xmin at or after S's xmin (age() against the same
 * transaction counter, a cheap test that keeps most rows off the exact check)
 * and not visible in S (its 64-bit id rebuilt from the current one: every
 * unfrozen visible xid is less than 2^31 old). Conservative throughout: a
 * frozen or odd xmin may read as new, which only costs the fallback.
 */
export async function sourceUnchangedSince(src: Client, q: { table: string; where: string; snapshot: string; rows: number }): Promise<boolean> {
  const xmin64 = BigInt(q.snapshot.split(':')[0]);
  const x64 = `s."pgshift$cur" - ((s."pgshift$cur" - xmin::text::bigint) % ${XID_SPACE} + ${XID_SPACE}) % ${XID_SPACE}`;
  const r = await src.query<{ n: string; changed: string; distance: string }>(
    `WITH s AS (SELECT $1::txid_snapshot AS "pgshift$snap", age(($2::bigint % ${XID_SPACE})::text::xid) AS "pgshift$age",
                       txid_snapshot_xmax(txid_current_snapshot()) AS "pgshift$cur")
     SELECT count(*)::text AS n,
            count(*) FILTER (WHERE age(xmin) <= s."pgshift$age"
                               AND NOT coalesce(${x64} >= 0 AND txid_visible_in_snapshot(greatest(${x64}, 0), s."pgshift$snap"), false))::text AS changed,
            (SELECT "pgshift$cur" - $2::bigint FROM s)::text AS distance
       FROM ONLY ${q.table}, s WHERE ${q.where}`,
    [q.snapshot, xmin64.toString()],
  );
  const row = r.rows[0];
  // (No alias for the table: a row filter may name it.) The 32-bit comparisons hold only within 2^31 transactions of the snapshot.
  if (BigInt(row.distance) >= MAX_XID_DISTANCE) return false;
  return Number(row.n) === q.rows && row.changed === '0';
}

export const fingerprintsMatch = (recorded: CopyFingerprint, found: CopyFingerprint | null) => found !== null && sameFingerprint(recorded, found);
