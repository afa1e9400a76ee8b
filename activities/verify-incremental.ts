// Incremental data verification, in the spirit of Ghostferry's inline
// verifier: the rows the apply has written recently (the touched-key queue,
// activities/capture/touched.ts) are compared source vs destination, row by
// row, with the same text rendering and hash as the full verification's
// drill-down (activities/verify-data.ts: md5 of ROW(columns)::text, data
// session settings on both sides, the row filter on the source).
//
// The race, and the rule. The source keeps changing while a key K is
// compared, and the destination trails it. Every queued key carries L, the
// LSN of the last source transaction the apply wrote K in; the apply moves L
// (in the same destination transaction as the data) whenever it writes K
// again, sampled or not, and on a TRUNCATE of the table.
//   1. On the destination, in one snapshot: K's queue entry (L) and its row D,
//      at applied position A.
//   2. On the source, in one snapshot S (after 1): K's row, then P = the
//      source's WAL insert position — every transaction visible in S ends at
//      or before P. Every transaction the apply had applied by A is visible
//      in S (it committed on the source before it reached the destination).
//   3. Equal: checked, consistent.
//   4. Different: wait until the applied position reaches P, then read K's
//      row D' and queue entry L' on the destination again. If L' ≠ L, K was
//      written again after step 1: re-queued (it is compared again later,
//      at its new LSN), never reported. If L' = L, no transaction touching K
//      ended in (A, applied ≥ P], and none visible in S ended after P: the
//      source read S is exactly K as of A, so once applied ≥ P the
//      destination must equal S. D' = S: the difference was lag, consistent.
//      D' ≠ S: K differs.
//   5. A key that differs in 4 is compared once more from step 2 (with the
//      same L), after a second: only a difference that persists through two
//      complete comparisons, with L unchanged throughout, is a mismatch. The
//      second pass covers the one thing the first cannot see — a commit whose
//      WAL was written before P but that was not yet visible in S — and costs
//      nothing when nothing differs.
// A mismatch is reported with table and key (and raises an alert in the
// workflow) and leaves the queue; a consistent key leaves it only if its L is
// still the one compared (otherwise it stays, to be compared again).
//
// Cost: keys are taken at most verification.incrementalRowsPerSecond per
// second (the apply samples at the same budget), in batches; each batch is a
// few statements per table on each side.
import { Context } from '@temporalio/activity';
import type { Client } from 'pg';
import type { Config } from '../lib/config';
import { parseLsn } from '../lib/capture/lsn';
import { textArrayLiteral } from '../lib/capture/sql';
import { ident, qualified } from '../lib/ident';
import { session } from '../lib/io/session';
import { assertNotFenced } from './control';
import { readCapture } from './capture/control';
import { ensureTouchedTable, TOUCHED } from './capture/touched';
import { readCopyTables, type CopyTable } from './full-load/tables';
import { heartbeat } from './heartbeat';

export interface IncrementalVerifyInput {
  config: Config;
  runToken: string;
  /** Return after about this many seconds (the workflow calls it in rounds). */
  maxSeconds?: number;
}

export type RowProblem = 'missing on destination' | 'extra on destination' | 'different';

export interface IncrementalMismatch {
  table: string;
  key: string[];
  problem: RowProblem;
  /** LSN of the last change the apply wrote to the row. */
  lsn: string;
  at: string;
}

export interface IncrementalVerifyResult {
  checked: number;
  mismatched: number;
  /** Differences whose row was changed again before they could be settled: compared again later. */
  requeued: number;
  /** Up to MISMATCH_LIMIT of this round's mismatches. */
  mismatches: IncrementalMismatch[];
  /** Keys waiting in the queue when the round ended. */
  queued: number;
  seconds: number;
}

const MISMATCH_LIMIT = 20;
const BATCH = 500;
/** How long a difference waits for the apply to pass the source read before it is left for a later round. */
const WAIT_APPLIED_MS = 60_000;

/** What one side knows of a table to read rows by key. */
interface TableSides {
  display: string;
  src: { table: string; columns: string[]; keys: string[]; types: string[]; filter: string | null };
  dst: { table: string; columns: string[]; keys: string[]; types: string[] };
}

interface Entry {
  table: string;
  key: string[];
  lsn: string;
}

const K = (j: number) => ident(`pgshift$k${j}`);
const I = ident('pgshift$i');

/** md5 of each key's row (null: no row), by position in `keys`. */
async function rowHashes(
  c: Client,
  side: { table: string; columns: string[]; keys: string[]; types: string[]; filter?: string | null },
  keys: string[][],
): Promise<(string | null)[]> {
  const n = side.keys.length;
  const params = Array.from({ length: n }, (_, j) => textArrayLiteral(keys.map((k) => k[j])));
  const match = side.keys.map((k, j) => `${ident(k)} = u.${K(j)}::${side.types[j]}`).join(' AND ');
  const r = await c.query<{ i: number; h: string | null }>(
    `SELECT u.${I}::int AS i, r.h FROM unnest(${params.map((_, j) => `$${j + 1}::text[]`).join(', ')}) WITH ORDINALITY AS u(${Array.from({ length: n }, (_, j) => K(j)).join(', ')}, ${I})
       LEFT JOIN LATERAL (SELECT md5(ROW(${side.columns.map(ident).join(', ')})::text) AS h FROM ONLY ${side.table}
                           WHERE ${match}${side.filter ? ` AND (${side.filter})` : ''}) r ON true`,
    params,
  );
  const out: (string | null)[] = new Array(keys.length).fill(null);
  for (const row of r.rows) out[row.i - 1] = row.h;
  return out;
}

/** Queue entries (their LSN; null when gone) of the given keys of one table. */
async function queueLsns(dst: Client, migration: string, table: string, keys: string[][]): Promise<(string | null)[]> {
  const r = await dst.query<{ i: number; lsn: string | null }>(
    `SELECT u.i::int AS i, q.lsn::text AS lsn FROM unnest($3::text[]) WITH ORDINALITY AS u(k, i)
       LEFT JOIN ${TOUCHED} q ON q.migration = $1 AND q.table_key = $2 AND q.row_key = u.k::text[]`,
    [migration, table, keys.map((k) => textArrayLiteral(k))],
  );
  const out: (string | null)[] = new Array(keys.length).fill(null);
  for (const row of r.rows) out[row.i - 1] = row.lsn;
  return out;
}

const problemOf = (s: string | null, d: string | null): RowProblem =>
  d === null ? 'missing on destination' : s === null ? 'extra on destination' : 'different';

export async function verifyTouchedRows(input: IncrementalVerifyInput): Promise<IncrementalVerifyResult> {
  const { config, runToken } = input;
  const started = Date.now();
  const deadline = started + (input.maxSeconds ?? 20) * 1000;
  let signal: AbortSignal | undefined;
  try {
    signal = Context.current().cancellationSignal;
  } catch {
    signal = undefined;
  }
  // A cancellation ends the round between two steps (the result keeps what it did); the sessions end only if that takes long.
  const hard = new AbortController();
  const onCancel = () => setTimeout(() => hard.abort(), 15_000).unref();
  signal?.addEventListener('abort', onCancel, { once: true });
  const stopping = () => !!signal?.aborted || Date.now() >= deadline;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => (clearTimeout(t), resolve());
      const t = setTimeout(() => (signal?.removeEventListener('abort', wake), resolve()), ms);
      signal?.addEventListener('abort', wake, { once: true });
    });

  const out: IncrementalVerifyResult = { checked: 0, mismatched: 0, requeued: 0, mismatches: [], queued: 0, seconds: 0 };
  const budget = config.verification.incrementalRowsPerSecond;
  const src = await session(config, 'source', 'verify', hard.signal);
  let dst: Client | undefined;
  try {
    dst = await session(config, 'destination', 'verify-incremental', hard.signal);
    const d = dst;
    await ensureTouchedTable(d);
    const sides = new Map<string, TableSides | null>();
    let copyTables: Map<string, CopyTable> | null = null;
    const sidesOf = async (key: string): Promise<TableSides | null> => {
      if (sides.has(key)) return sides.get(key)!;
      copyTables ??= new Map((await readCopyTables(src, config)).map((t) => [t.key, t]));
      const t = copyTables.get(key);
      let s: TableSides | null = null;
      if (t?.chunkKey) {
        const keyTargets = t.chunkKey.columns.map((k) => t.targetColumns[t.columns.findIndex((c) => c.name === k)]);
        const target = qualified(t.target.schema, t.target.table);
        const types = await d.query<{ name: string; type: string }>(
          `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`,
          [target],
        );
        const byName = new Map(types.rows.map((r) => [r.name, r.type]));
        if (keyTargets.every((k) => byName.has(k))) {
          s = {
            display: t.display,
            src: {
              table: qualified(t.schema, t.table),
              columns: t.columns.map((c) => c.name),
              keys: t.chunkKey.columns,
              types: t.chunkKey.types,
              filter: t.filter,
            },
            dst: { table: target, columns: t.targetColumns, keys: keyTargets, types: keyTargets.map((k) => byName.get(k)!) },
          };
        }
      }
      sides.set(key, s);
      return s;
    };
    const appliedLsn = async () => parseLsn((await readCapture(d, config.name))!.appliedLsn);
    const waitApplied = async (p: bigint): Promise<boolean> => {
      const until = Math.min(Date.now() + WAIT_APPLIED_MS, deadline + 30_000);
      for (;;) {
        if ((await appliedLsn()) >= p) return true;
        if (signal?.aborted || Date.now() >= until) return false;
        heartbeat({ waiting: 'the apply to pass the source read', checked: out.checked });
        await sleep(250);
      }
    };
    /** Remove entries still at the LSN compared (a key written again meanwhile stays). */
    const settle = async (entries: Entry[]) => {
      if (!entries.length) return;
      await d.query('BEGIN');
      try {
        await assertNotFenced(d, config.name, runToken);
        await d.query(
          `DELETE FROM ${TOUCHED} q USING unnest($2::text[], $3::text[], $4::pg_lsn[]) AS u(t, k, l)
            WHERE q.migration = $1 AND q.table_key = u.t AND q.row_key = u.k::text[] AND q.lsn = u.l`,
          [
            config.name,
            textArrayLiteral(entries.map((e) => e.table)),
            textArrayLiteral(entries.map((e) => textArrayLiteral(e.key))),
            textArrayLiteral(entries.map((e) => e.lsn)),
          ],
        );
        await d.query('COMMIT');
      } catch (e) {
        await d.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    };
    const byTable = (entries: Entry[]) => {
      const m = new Map<string, Entry[]>();
      for (const e of entries) m.set(e.table, [...(m.get(e.table) ?? []), e]);
      return m;
    };

    /**
     * Steps 2–4 of the rule for entries whose destination row (`dstHash`, read
     * with their queue entry) is given; returns the entries that still differ
     * and those whose L moved (re-queued). `dstHash` null: read it now, with
     * the queue entry, in one snapshot (the second pass).
     */
    const compare = async (entries: Entry[], dstHash: Map<Entry, string | null> | null) => {
      const consistent: Entry[] = [];
      const differing: { e: Entry; s: string | null; d: string | null }[] = [];
      const requeued: Entry[] = [];
      const groups = byTable(entries);
      if (!dstHash) {
        dstHash = new Map();
        await d.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        try {
          for (const [table, es] of groups) {
            const s = (await sidesOf(table))!;
            const keys = es.map((e) => e.key);
            const [lsns, hashes] = [await queueLsns(d, config.name, table, keys), await rowHashes(d, s.dst, keys)];
            es.forEach((e, i) => {
              if (lsns[i] !== e.lsn) requeued.push(e);
              else dstHash!.set(e, hashes[i]);
            });
          }
        } finally {
          await d.query('COMMIT');
        }
      }
      // Step 2: the source, one snapshot, then P.
      const srcHash = new Map<Entry, string | null>();
      await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      let p: bigint;
      try {
        for (const [table, es] of groups) {
          const live = es.filter((e) => dstHash!.has(e));
          if (!live.length) continue;
          const s = (await sidesOf(table))!;
          const hashes = await rowHashes(
            src,
            s.src,
            live.map((e) => e.key),
          );
          live.forEach((e, i) => srcHash.set(e, hashes[i]));
        }
        p = parseLsn((await src.query<{ p: string }>('SELECT pg_current_wal_insert_lsn()::text AS p')).rows[0].p);
      } finally {
        await src.query('COMMIT');
      }
      const pending: Entry[] = [];
      for (const [e, s] of srcHash) (s === dstHash.get(e) ? consistent : pending).push(e);
      if (!pending.length) return { consistent, differing, requeued };
      // Step 4: once the apply has passed P, the destination must equal the source read unless K was written again.
      if (!(await waitApplied(p))) return { consistent, differing, requeued, unsettled: pending };
      await d.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        for (const [table, es] of byTable(pending)) {
          const s = (await sidesOf(table))!;
          const keys = es.map((e) => e.key);
          const [lsns, hashes] = [await queueLsns(d, config.name, table, keys), await rowHashes(d, s.dst, keys)];
          es.forEach((e, i) => {
            if (lsns[i] !== e.lsn) requeued.push(e);
            else if (hashes[i] === srcHash.get(e)) consistent.push(e);
            else differing.push({ e, s: srcHash.get(e)!, d: hashes[i] });
          });
        }
      } finally {
        await d.query('COMMIT');
      }
      return { consistent, differing, requeued };
    };

    while (!stopping()) {
      const batchStarted = Date.now();
      const size = budget === null ? BATCH : Math.max(1, Math.min(BATCH, budget));
      // Step 1: the oldest queued keys and their destination rows, in one snapshot.
      const entries: Entry[] = [];
      const dstHash = new Map<Entry, string | null>();
      const unknown: Entry[] = [];
      await d.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const taken = await d.query<{ table: string; key: string[]; lsn: string }>(
          `SELECT table_key AS table, row_key AS key, lsn::text AS lsn FROM ${TOUCHED} WHERE migration = $1 ORDER BY lsn LIMIT $2`,
          [config.name, size],
        );
        for (const r of taken.rows) entries.push({ table: r.table, key: r.key, lsn: r.lsn });
        for (const [table, es] of byTable(entries)) {
          const s = await sidesOf(table);
          if (!s) {
            unknown.push(...es); // not a table of the migration (any more), or without key: nothing to compare
            continue;
          }
          const hashes = await rowHashes(
            d,
            s.dst,
            es.map((e) => e.key),
          );
          es.forEach((e, i) => dstHash.set(e, hashes[i]));
        }
      } finally {
        await d.query('COMMIT');
      }
      if (!entries.length) {
        heartbeat({ checked: out.checked, mismatched: out.mismatched, queued: 0 });
        await sleep(1000);
        continue;
      }
      await settle(unknown);
      const known = entries.filter((e) => dstHash.has(e));
      const first = await compare(known, dstHash);
      out.requeued += first.requeued.length;
      const settled = [...first.consistent];
      if (first.differing.length && !signal?.aborted) {
        // Step 5: a second complete comparison of what still differs, with the same L.
        await sleep(1000);
        const again = await compare(
          first.differing.map((x) => x.e),
          null,
        );
        out.requeued += again.requeued.length;
        settled.push(...again.consistent);
        for (const x of again.differing) {
          out.mismatched++;
          if (out.mismatches.length < MISMATCH_LIMIT) {
            out.mismatches.push({
              table: (await sidesOf(x.e.table))!.display,
              key: x.e.key,
              problem: problemOf(x.s, x.d),
              lsn: x.e.lsn,
              at: new Date().toISOString(),
            });
          }
          settled.push(x.e);
        }
      }
      out.checked += settled.length;
      await settle(settled);
      heartbeat({ checked: out.checked, mismatched: out.mismatched, requeued: out.requeued });
      // The budget: at most `budget` keys a second.
      if (budget !== null) {
        const due = (entries.length / budget) * 1000 - (Date.now() - batchStarted);
        if (due > 0 && !stopping()) await sleep(Math.min(due, Math.max(0, deadline - Date.now())));
      }
    }
    out.queued = Number((await d.query<{ n: string }>(`SELECT count(*) AS n FROM ${TOUCHED} WHERE migration = $1`, [config.name])).rows[0].n);
    out.seconds = (Date.now() - started) / 1000;
    return out;
  } finally {
    signal?.removeEventListener('abort', onCancel);
    await src.end().catch(() => undefined);
    await dst?.end().catch(() => undefined);
  }
}
