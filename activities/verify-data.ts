// Full data verification: every row of every copied table
// compared by key range — count plus two order-independent hash aggregates of
// each row's text, computed on both sides in parallel — then a drill-down to
// the differing keys of a range that does not match. The ranges are the full
// load's chunks over the table's row key (activities/selection.ts), rendered
// with each side's own column names (renames apply).
//
// While changes flow (the migration's slot exists and the apply runs), a range
// compared now may differ only because the apply has not reached the source's
// current state yet. Such a range is re-checked before it is called different
// (SPEC §2 row 8), key by key (ranges of up to DRILL_MAX_ROWS rows):
//   1. destination, one snapshot: each key's row hash and xmin (the destination
//      transaction that last wrote it: the apply writes a new row version
//      whenever it applies a change of the key);
//   2. source, one snapshot: each key's row hash, then P, the source's WAL
//      insert position (every transaction visible in that snapshot ends at or
//      before P);
//   3. the keys that differ wait until the applied position reaches P, then
//      their destination row is read again: equal to the source read → lag,
//      consistent; written again by the apply (xmin or presence changed) → the
//      key changed meanwhile and is compared again from step 1; unchanged and
//      still different → it differs at this pass.
// A key is reported only when it differs at two passes (the second covers a
// commit whose WAL preceded P but that was not yet visible in the source
// snapshot); a key still changing after RECHECK_PASSES passes is left out and
// counted as "still changing" in the summary (incremental verification and
// the cutover's verification compare it once it settles). A range too large to
// drill is re-compared as a whole after the apply has passed P, up to
// RECHECK_PASSES times.
import type { Client } from 'pg';
import type { Config } from '../lib/config';
import { ident, qualified } from '../lib/ident';
import { withSession, withSessions } from '../lib/io/session';
import { parseLsn } from '../lib/capture/lsn';
import { textArrayLiteral } from '../lib/capture/sql';
import { readCapture } from './capture/control';
import { captureSlotName } from '../lib/capture/names';
import { heartbeat } from './heartbeat';
import { about } from './retry';
import { type KeyRange, rangePredicate } from './full-load/plan';
import type { CopyTable } from './full-load/tables';
import { type ChunkRecord, destinationRangeFingerprint, fingerprintsMatch, provable, sameColumnTypes, sourceUnchangedSince } from './verify-fingerprint';
import { addFingerprints } from '../lib/copy-fingerprint';

export interface TableVerification {
  display: string;
  rowsSource: number;
  rowsDestination: number;
  ranges: number;
  differingRanges: number;
  /** Up to DRILL_LIMIT keys (as text) that are missing, extra or different. */
  differingKeys: { key: string[]; problem: 'missing on destination' | 'extra on destination' | 'different' }[];
  consistent: boolean;
  summary: string;
  /** Ranges that differed at first and were re-checked after the apply passed the source read (changes flowing). */
  recheckedRanges?: number;
  /** Keys still changing through every re-check pass: neither consistent nor different yet. */
  unsettledKeys?: number;
  /** Ranges proved consistent by the copy's fingerprint and an unchanged source (activities/verify-fingerprint.ts), without the digests. */
  fingerprintedRanges?: number;
}

const DRILL_LIMIT = 20;
const RECHECK_PASSES = 4;
const WAIT_APPLIED_MS = 60_000;
/** A range with more rows than this is reported as a whole, not key by key. */
const DRILL_MAX_ROWS = 200_000;

interface Side {
  client: Client;
  /** Qualified name; read with ONLY: a table's own rows, not its inheritance children's. */
  table: string;
  columns: string[];
  keyColumns: string[] | null;
  filter: string | null;
}

/** The destination side, with a second session of the same profile to run a read beside the first. */
interface DestinationSide extends Side {
  another: <T>(fn: (c: Client) => Promise<T>) => Promise<T>;
}

const rowText = (s: Side) => `md5(ROW(${s.columns.map(ident).join(', ')})::text)`;
const where = (s: Side, range: KeyRange | null, types: string[]) =>
  [range && s.keyColumns ? rangePredicate(s.keyColumns, types, range) : 'true', s.filter ? `(${s.filter})` : null].filter(Boolean).join(' AND ');

/**
 * Count and two order-independent aggregates of each row's text: the sums of
 * two differently seeded 64-bit hashes (sums rather than bit_xor, which only
 * PostgreSQL 14 and later have). hashtextextended is the hash
 * of hash partitioning, so it is the same on every server version; hashing the
 * text in the "C" collation hashes its bytes whatever the database collation.
 * (md5 of the text did the same job at three times the CPU on narrow rows.)
 */
async function digest(s: Side, range: KeyRange | null, types: string[]) {
  const r = await s.client.query<{ n: string; x: string; h: string }>(
    `SELECT count(*) AS n,
            coalesce(sum(pg_catalog.hashtextextended(t, 0)::numeric), 0)::text AS x,
            coalesce(sum(pg_catalog.hashtextextended(t, 1)::numeric), 0)::text AS h
       FROM (SELECT ROW(${s.columns.map(ident).join(', ')})::text COLLATE "C" AS t FROM ONLY ${s.table} WHERE ${where(s, range, types)}) q`,
  );
  return r.rows[0];
}

async function keyHashes(s: Side, range: KeyRange | null, types: string[]): Promise<Map<string, string>> {
  const keys = s.keyColumns!.map((c) => `${ident(c)}::text`).join(', ');
  const r = await s.client.query<{ k: string[]; h: string }>(
    `SELECT ARRAY[${keys}] AS k, ${rowText(s)} AS h FROM ONLY ${s.table} WHERE ${where(s, range, types)}`,
  );
  return new Map(r.rows.map((x) => [JSON.stringify(x.k), x.h]));
}

type Problem = TableVerification['differingKeys'][number]['problem'];
interface KeyRow {
  h: string | null;
  /** Destination only: xmin of the row version (null: no row). */
  x: string | null;
}

/** Row hash (and xmin) of each key, by position in `keys` (null: no such row). */
async function rowsByKey(s: Side, types: string[], keys: string[][]): Promise<KeyRow[]> {
  const n = s.keyColumns!.length;
  const k = (j: number) => ident(`pgshift$k${j}`);
  const params = Array.from({ length: n }, (_, j) => textArrayLiteral(keys.map((key) => key[j])));
  const match = s.keyColumns!.map((c, j) => `${ident(c)} = u.${k(j)}::${types[j]}`).join(' AND ');
  const r = await s.client.query<{ i: number; h: string | null; x: string | null }>(
    `SELECT u."pgshift$i"::int AS i, r.h, r.x FROM unnest(${params.map((_, j) => `$${j + 1}::text[]`).join(', ')}) WITH ORDINALITY AS u(${Array.from({ length: n }, (_, j) => k(j)).join(', ')}, "pgshift$i")
       LEFT JOIN LATERAL (SELECT ${rowText(s)} AS h, xmin::text AS x FROM ONLY ${s.table} WHERE ${match}${s.filter ? ` AND (${s.filter})` : ''}) r ON true`,
    params,
  );
  const out: KeyRow[] = keys.map(() => ({ h: null, x: null }));
  for (const row of r.rows) out[row.i - 1] = { h: row.h, x: row.x };
  return out;
}

/** Key → hash and xmin of a range's rows. */
async function rangeRows(s: Side, range: KeyRange | null, types: string[]): Promise<Map<string, KeyRow>> {
  const keys = s.keyColumns!.map((c) => `${ident(c)}::text`).join(', ');
  const r = await s.client.query<{ k: string[]; h: string; x: string }>(
    `SELECT ARRAY[${keys}] AS k, ${rowText(s)} AS h, xmin::text AS x FROM ONLY ${s.table} WHERE ${where(s, range, types)}`,
  );
  return new Map(r.rows.map((x) => [JSON.stringify(x.k), { h: x.h, x: x.x }]));
}

async function snapshot<T>(c: Client, fn: () => Promise<T>): Promise<T> {
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    return await fn();
  } finally {
    await c.query('COMMIT');
  }
}

const insertLsn = async (c: Client) => parseLsn((await c.query<{ p: string }>('SELECT pg_current_wal_insert_lsn()::text AS p')).rows[0].p);
const problemOf = (s: string | null, d: string | null): Problem => (d === null ? 'missing on destination' : s === null ? 'extra on destination' : 'different');

/**
 * The re-check of a range that differed while changes flow (the rule in the
 * module header). Returns the keys that differ at two passes (empty: the
 * range is consistent) and how many were still changing.
 */
async function recheckRange(
  S: Side,
  D: Side,
  range: KeyRange | null,
  types: string[],
  rows: number,
  waitApplied: (p: bigint) => Promise<boolean>,
  nested = false,
): Promise<{ consistent: boolean; keys: TableVerification['differingKeys']; unsettled: number; found: number }> {
  if (S.keyColumns && rows > DRILL_MAX_ROWS && !nested) {
    // Too large to drill (e.g. the open-ended last range, where new rows keep arriving): split by key on the
    // source, then compare each part and re-check those that differ.
    const step = Math.ceil(DRILL_MAX_ROWS / 2);
    const keys = S.keyColumns.map((c) => `${ident(c)}::text`).join(', ');
    const b = await S.client.query<{ k: string[] }>(
      `SELECT k FROM (SELECT ARRAY[${keys}] AS k, row_number() OVER (ORDER BY ${S.keyColumns.map(ident).join(', ')}) AS rn FROM ONLY ${S.table}
          WHERE ${where(S, range, types)}) q WHERE rn % ${step} = 0 ORDER BY rn`,
    );
    const bounds = b.rows.map((r) => r.k);
    const parts = [range?.lower ?? null, ...bounds].map((lower, i) => ({ lower, upper: bounds[i] ?? range?.upper ?? null }));
    const out = { consistent: true, keys: [] as TableVerification['differingKeys'], unsettled: 0, found: 0 };
    for (const part of parts) {
      const [a, d] = await Promise.all([digest(S, part, types), digest(D, part, types)]);
      if (a.n === d.n && a.x === d.x && a.h === d.h) continue;
      const r = await recheckRange(S, D, part, types, Math.max(Number(a.n), Number(d.n)), waitApplied, true);
      out.consistent &&= r.consistent;
      out.keys.push(...r.keys.slice(0, DRILL_LIMIT - out.keys.length));
      out.unsettled += r.unsettled;
      out.found += r.found;
    }
    return out;
  }
  if (!S.keyColumns || rows > DRILL_MAX_ROWS) {
    // Compared as a whole: the destination is read once the apply has passed the source's read, and may be
    // ahead of it by then. A difference counts once the source range stood still between two passes; a range
    // the source changed at every pass (an append-only table written all along) is left unsettled, not
    // called different — the cutover's verification, with writes fenced and the apply drained, decides it.
    let previous: { n: string; x: string; h: string } | null = null;
    let stood = false;
    for (let pass = 0; pass < RECHECK_PASSES; pass++) {
      const [a, p] = await snapshot(S.client, async () => [await digest(S, range, types), await insertLsn(S.client)] as const);
      if (previous && previous.n === a.n && previous.x === a.x && previous.h === a.h) stood = true;
      previous = a;
      if (!(await waitApplied(p))) return { consistent: false, keys: [], unsettled: 0, found: 0 };
      const b = await digest(D, range, types);
      if (a.n === b.n && a.x === b.x && a.h === b.h) return { consistent: true, keys: [], unsettled: 0, found: 0 };
    }
    return stood ? { consistent: false, keys: [], unsettled: 0, found: 0 } : { consistent: true, keys: [], unsettled: Math.max(rows, 1), found: 0 };
  }
  const r = await recheckKeys(S, D, [range], types, waitApplied);
  return { consistent: r.found === 0, keys: r.keys, unsettled: r.unsettled, found: r.found };
}

/**
 * The key-level re-check of several ranges at once (one wait for the apply per
 * pass, whatever the number of ranges): pass 1 reads each range, later passes
 * the keys still in question.
 */
async function recheckKeys(
  S: Side,
  D: Side,
  ranges: (KeyRange | null)[],
  types: string[],
  waitApplied: (p: bigint) => Promise<boolean>,
): Promise<{ keys: TableVerification['differingKeys']; unsettled: number; found: number; rangesFound: Set<number> }> {
  let dstRows = new Map<string, KeyRow>();
  let srcRows = new Map<string, KeyRow>();
  const rangeOf = new Map<string, number>();
  let p = 0n;
  let candidates: string[] = [];
  for (const [i, range] of ranges.entries()) {
    // Destination first, then the source and P: the order the rule needs, key by key.
    const d = await snapshot(D.client, () => rangeRows(D, range, types));
    const [s, at] = await snapshot(S.client, async () => [await rangeRows(S, range, types), await insertLsn(S.client)] as const);
    if (at > p) p = at;
    for (const k of new Set([...s.keys(), ...d.keys()])) {
      if (s.get(k)?.h === d.get(k)?.h) continue;
      candidates.push(k);
      rangeOf.set(k, i);
      if (d.has(k)) dstRows.set(k, d.get(k)!);
      if (s.has(k)) srcRows.set(k, s.get(k)!);
    }
  }
  const rangesFound = new Set<number>();
  const strikes = new Map<string, number>();
  const reported: TableVerification['differingKeys'] = [];
  let found = 0;
  for (let pass = 0; candidates.length && pass < RECHECK_PASSES; pass++) {
    const keys = candidates.map((k) => JSON.parse(k) as string[]);
    if (pass > 0) {
      const d = await snapshot(D.client, () => rowsByKey(D, types, keys));
      const [s, at] = await snapshot(S.client, async () => [await rowsByKey(S, types, keys), await insertLsn(S.client)] as const);
      dstRows = new Map(candidates.map((k, i) => [k, d[i]]));
      srcRows = new Map(candidates.map((k, i) => [k, s[i]]));
      p = at;
      candidates = candidates.filter((k) => srcRows.get(k)!.h !== dstRows.get(k)!.h);
      if (!candidates.length) break;
    }
    if (!(await waitApplied(p))) break;
    const now = await snapshot(D.client, () =>
      rowsByKey(
        D,
        types,
        candidates.map((k) => JSON.parse(k) as string[]),
      ),
    );
    const next: string[] = [];
    candidates.forEach((k, i) => {
      const before = dstRows.get(k);
      const s = srcRows.get(k)?.h ?? null;
      if (now[i].h === s) return; // lag: settled, consistent
      if (now[i].x !== (before?.x ?? null)) return void next.push(k); // written again by the apply: compared again
      const n = (strikes.get(k) ?? 0) + 1;
      strikes.set(k, n);
      if (n >= 2) {
        found++;
        rangesFound.add(rangeOf.get(k)!);
        if (reported.length < DRILL_LIMIT) reported.push({ key: JSON.parse(k), problem: problemOf(s, now[i].h) });
      } else next.push(k);
    });
    candidates = next;
  }
  return { keys: reported, unsettled: candidates.length, found, rangesFound };
}

/**
 * The cheap proof of one range (activities/verify-fingerprint.ts): the
 * destination's fingerprint of it equals the copy's, and the source's range is
 * as the copy's snapshot saw it. Its row count when both hold; null is no
 * verdict (the digests compare the range).
 */
async function provedByFingerprint(
  S: Side,
  D: DestinationSide,
  t: CopyTable,
  chunk: ChunkRecord,
  range: KeyRange | null,
  types: string[],
  beat: (rows: number) => void,
) {
  const p = provable(chunk, t);
  if (!p) return null;
  const [found, unchanged] = await Promise.all([
    destinationRangeFingerprint(D.client, { table: D.table, columns: D.columns, where: where(D, range, types), binary: t.binary }, D.another, beat),
    sourceUnchangedSince(S.client, { table: S.table, where: where(S, range, types), snapshot: p.snapshot, rows: p.fp.rows }),
  ]);
  return unchanged && fingerprintsMatch(p.fp, found) ? p.fp.rows : null;
}

/**
 * The cheap proof of a whole table whose every range can be proved and whose
 * ranges tile the key space (the first open below, the last open above, each
 * ending where the next begins): the destination's table read with one COPY
 * against the sum of the chunks' fingerprints (disjoint ranges add up), each
 * source range checked against its own chunk's snapshot. One read of the
 * table instead of one filtered scan of it per range. Its row count when
 * everything holds; null is no verdict (the ranges are then proved or compared
 * one by one, which names the range that differs).
 */
async function provedWhole(
  S: Side,
  D: DestinationSide,
  t: CopyTable,
  chunks: ChunkRecord[],
  ranges: KeyRange[],
  types: string[],
  beat: (rows: number) => void,
) {
  const proofs = chunks.map((c) => provable(c, t));
  const same = (x: string[] | null, y: string[] | null) => JSON.stringify(x) === JSON.stringify(y);
  const tiles = ranges[0].lower === null && ranges.at(-1)!.upper === null && ranges.every((r, i) => i === 0 || same(ranges[i - 1].upper, r.lower));
  if (!tiles || proofs.some((p) => !p)) return null;
  const [found, unchanged] = await Promise.all([
    destinationRangeFingerprint(D.client, { table: D.table, columns: D.columns, where: where(D, null, types), binary: t.binary }, D.another, beat),
    (async () => {
      for (const [i, range] of ranges.entries()) {
        const p = proofs[i]!;
        if (!(await sourceUnchangedSince(S.client, { table: S.table, where: where(S, range, types), snapshot: p.snapshot, rows: p.fp.rows }))) return false;
      }
      return true;
    })(),
  ]);
  const total = addFingerprints(proofs.map((p) => p!.fp));
  return unchanged && fingerprintsMatch(total, found) ? total.rows : null;
}

/** Whether changes may still be flowing: the destination records a capture and its slot exists on the source. */
async function changesFlowing(src: Client, dst: Client, config: Config): Promise<boolean> {
  const capture = await readCapture(dst, config.name).catch(() => null);
  if (!capture) return false;
  const slot = await src.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [captureSlotName(config)]);
  return !!slot.rowCount;
}

export async function verifyTableData(input: {
  config: Config;
  table: string;
  /** false: no re-check (the caller knows the apply is drained: lag zero). Default: re-check while changes may flow. */
  recheck?: boolean;
}): Promise<TableVerification> {
  const { config, table } = input;
  // The data settings on both sides: each row's text, hashed, must read the same on both.
  return withSessions(config, 'verify', async (src, dst) => {
    let display = table;
    try {
      // The fingerprint through to_jsonb: a control table made by an older version has no such column.
      const plan = await dst.query<{ spec: CopyTable; lower_key: string[] | null; upper_key: string[] | null } & ChunkRecord>(
        `SELECT t.spec, c.lower_key, c.upper_key, c.state, c.rows::text, c.snapshot, to_jsonb(c)->>'fingerprint' AS fingerprint
           FROM pgshift.copy_tables t JOIN pgshift.chunks c USING (migration, table_key)
        WHERE t.migration = $1 AND t.table_key = $2 ORDER BY c.chunk`,
        [config.name, table],
      );
      if (!plan.rows.length) throw new Error(`table ${table} has no full-load plan on the destination (pgshift.copy_tables)`);
      const t = plan.rows[0].spec;
      display = t.display;
      const key = t.chunkKey;
      const types = key?.types ?? [];
      const mapKey = (c: string) => t.targetColumns[t.columns.findIndex((x) => x.name === c)];
      const S: Side = {
        client: src,
        table: qualified(t.schema, t.table),
        columns: t.columns.map((c) => c.name),
        keyColumns: key?.columns ?? null,
        filter: t.filter,
      };
      const D: DestinationSide = {
        another: (fn) => withSession(config, 'destination', 'verify', fn),
        client: dst,
        table: qualified(t.target.schema, t.target.table),
        columns: t.targetColumns,
        keyColumns: key ? key.columns.map(mapKey) : null,
        filter: null,
      };
      // Without a key, the only range both sides understand is the whole table.
      const ranges: (KeyRange | null)[] = key ? plan.rows.map((r) => ({ lower: r.lower_key, upper: r.upper_key })) : [null];
      // The copy's fingerprint of each range, where it can prove the range: one per chunk (a table without key copied
      // in several page ranges has none the destination could match), binary rows only between the same column types.
      const fingerprinted =
        (key || plan.rows.length === 1) &&
        plan.rows.some((c) => provable(c, t)) &&
        (!t.binary ||
          (await sameColumnTypes(
            dst,
            D.table,
            D.columns,
            t.columns.map((c) => c.type),
          )));

      const out: TableVerification = {
        display: t.display,
        rowsSource: 0,
        rowsDestination: 0,
        ranges: ranges.length,
        differingRanges: 0,
        differingKeys: [],
        consistent: true,
        summary: '',
      };
      const flowing = input.recheck !== false && (await changesFlowing(src, dst, config));
      const waitApplied = async (p: bigint) => {
        const until = Date.now() + WAIT_APPLIED_MS;
        for (;;) {
          const c = await readCapture(dst, config.name);
          if (c && parseLsn(c.appliedLsn) >= p) return true;
          if (Date.now() >= until) return false;
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      let unsettled = 0;
      const recheckLater: (KeyRange | null)[] = [];
      const whole =
        fingerprinted && key && ranges.length > 1
          ? await provedWhole(S, D, t, plan.rows, ranges as KeyRange[], types, (rows) => heartbeat({ range: 0, of: ranges.length, rows }))
          : null;
      if (whole !== null) {
        out.rowsSource = out.rowsDestination = whole;
        out.fingerprintedRanges = ranges.length;
        heartbeat({ range: ranges.length - 1, of: ranges.length, rows: whole });
      }
      // Proved as a whole: no range left to compare one by one.
      const oneByOne = whole === null ? ranges : [];
      for (const [i, range] of oneByOne.entries()) {
        const proved = fingerprinted
          ? await provedByFingerprint(S, D, t, plan.rows[i], range, types, (rows) => heartbeat({ range: i, of: ranges.length, rows: out.rowsSource + rows }))
          : null;
        if (proved !== null) {
          out.rowsSource += proved;
          out.rowsDestination += proved;
          out.fingerprintedRanges = (out.fingerprintedRanges ?? 0) + 1;
          heartbeat({ range: i, of: ranges.length, rows: out.rowsSource });
          continue;
        }
        const [a, b] = await Promise.all([digest(S, range, types), digest(D, range, types)]);
        out.rowsSource += Number(a.n);
        out.rowsDestination += Number(b.n);
        heartbeat({ range: i, of: ranges.length, rows: out.rowsSource });
        if (a.n === b.n && a.x === b.x && a.h === b.h) continue;
        if (flowing) {
          // Changes flow: re-checked once the apply has passed the source read, before it is called a difference.
          out.recheckedRanges = (out.recheckedRanges ?? 0) + 1;
          const rows = Math.max(Number(a.n), Number(b.n));
          if (key && rows <= DRILL_MAX_ROWS) {
            recheckLater.push(range); // all together after the first pass: one wait for the apply, not one per range
            continue;
          }
          const r = await recheckRange(S, D, range, types, rows, waitApplied);
          unsettled += r.unsettled;
          if (r.consistent) continue;
          out.differingRanges++;
          out.differingKeys.push(...r.keys.slice(0, DRILL_LIMIT - out.differingKeys.length));
          continue;
        }
        out.differingRanges++;
        if (key && out.differingKeys.length < DRILL_LIMIT && Math.max(Number(a.n), Number(b.n)) <= DRILL_MAX_ROWS) {
          const [ka, kb] = await Promise.all([keyHashes(S, range, types), keyHashes(D, range, types)]);
          for (const [k, h] of ka) {
            if (out.differingKeys.length >= DRILL_LIMIT) break;
            if (!kb.has(k)) out.differingKeys.push({ key: JSON.parse(k), problem: 'missing on destination' });
            else if (kb.get(k) !== h) out.differingKeys.push({ key: JSON.parse(k), problem: 'different' });
          }
          for (const k of kb.keys()) {
            if (out.differingKeys.length >= DRILL_LIMIT) break;
            if (!ka.has(k)) out.differingKeys.push({ key: JSON.parse(k), problem: 'extra on destination' });
          }
        }
      }
      if (recheckLater.length) {
        const r = await recheckKeys(S, D, recheckLater, types, waitApplied);
        unsettled += r.unsettled;
        out.differingRanges += r.rangesFound.size;
        out.differingKeys.push(...r.keys.slice(0, DRILL_LIMIT - out.differingKeys.length));
      }
      out.consistent = out.differingRanges === 0;
      if (unsettled) out.unsettledKeys = unsettled;
      const n = out.rowsSource.toLocaleString('en-US');
      const flowNote = out.recheckedRanges
        ? ` (changes flowing: ${out.recheckedRanges} ranges re-checked after the apply passed them${unsettled ? `, ${unsettled} ${key ? 'keys' : 'rows of a table without key'} still changing, left to ${key ? 'incremental verification' : "the cutover's verification"}` : ''})`
        : '';
      out.summary = out.consistent
        ? `${n} rows in ${t.display} compared, consistent${flowNote}`
        : `${n} rows in ${t.display} compared (${out.rowsDestination.toLocaleString('en-US')} on the destination), ${out.differingRanges} of ${out.ranges} ranges differ` +
          (out.differingKeys.length
            ? `; e.g. key ${out.differingKeys
                .map((d) => `(${d.key.join(', ')}) ${d.problem}`)
                .slice(0, 3)
                .join('; ')}`
            : '') +
          flowNote;
      return out;
    } catch (err) {
      throw about(`verification of ${display}`, err);
    }
  });
}

/**
 * One page of the migration's copied tables (its full-load plan), largest
 * first: a fixed order, so the workflow's count of tables compared is a cursor.
 */
export async function listCopiedTables(input: {
  config: Config;
  offset: number;
  limit: number;
}): Promise<{ total: number; tables: { key: string; display: string }[] }> {
  return withSession(input.config, 'destination', 'verify', async (c) => {
    const r = await c.query<{ key: string; display: string; total: number }>(
      `SELECT table_key AS key, spec->>'display' AS display, count(*) OVER ()::int AS total FROM pgshift.copy_tables
        WHERE migration = $1 ORDER BY (spec->>'bytes')::bigint DESC, table_key OFFSET $2 LIMIT $3`,
      [input.config.name, input.offset, input.limit],
    );
    const total =
      r.rows[0]?.total ??
      Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM pgshift.copy_tables WHERE migration = $1', [input.config.name])).rows[0].n);
    return { total, tables: r.rows.map(({ key, display }) => ({ key, display })) };
  });
}
