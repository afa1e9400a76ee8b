// Applying one piece of the change stream (many row changes, possibly of
// many source transactions) inside the open destination transaction.
//
// Fast path: per table, the collapsed final state of each key, written with
// set-based statements in this order:
//   1. images whose unchanged TOAST values must move with a key change take
//      them from the old row (read before anything changes);
//   2. deletes;
//   3. complete images: upsert (a row filter deletes those that do not match);
//   4. partial images: update the present columns of the existing row, so a
//      TOASTed value is never overwritten; a row missing on the destination
//      (not yet copied, or just moved into the row filter) takes the missing
//      values from the source row as it is now — later changes in the stream
//      bring it to the same state as the source either way.
// Collapsing can reach the final state through an order the source never
// took; where that hits a constraint (a secondary unique index with two rows
// swapping a value, an FK without replica role), the piece is rolled back to
// its savepoint and applied again in halves, down to change by change in
// source order (always a valid order) for the few changes around the conflict.
// A data or constraint error that order cannot cure (a destination-only CHECK,
// a value the destination type refuses) is narrowed the same way, so the
// failure names the change: its table, its key and its operation.
import type { Client } from 'pg';
import { isPartial, type Key, keyOf, keyString, type RowChange, TableBatch, type FinalState } from '../../lib/capture/batch';
import { type Datum, UNCHANGED } from '../../lib/capture/pgoutput';
import { type ApplyTable, deleteSql, partialUpdateSql, readColumnsSql, textArrayLiteral, truncateSql, upsertSql } from '../../lib/capture/sql';
import { about } from '../retry';
import type { Lsn } from '../../lib/capture/lsn';
import type { TouchedRecorder } from './touched';

type Image = Extract<FinalState, { kind: 'image' }>;

/** Errors where row order matters: unique/exclusion/FK violations, a key twice in one upsert. */
const ORDER_SENSITIVE = new Set(['23505', '23P01', '23503', '21000']);
/** Errors a row's values cause (data exceptions, integrity violations): narrowed down to the change, so the failure names its key. */
const rowError = (code: string) => code.startsWith('22') || code.startsWith('23');

/** Name the change an error is about: its table, its key and what it did, e.g. `table shop.t, key (id)=(5), insert: …`. */
function aboutChange({ table, change }: Piece['changes'][number], err: unknown): unknown {
  let key: Key | null = null;
  try {
    key = change.op === 'delete' ? change.oldKey : keyOf(change.values, table.key, table.display);
  } catch {
    // the key itself is what failed: the message says so
  }
  const cols = table.key.map((i) => table.columns[i].source).join(', ');
  return about(`table ${table.display}${key ? `, key (${cols})=(${key.join(', ')})` : ''}, ${change.op}`, err);
}

export class Piece {
  readonly tables = new Map<ApplyTable, TableBatch>();
  /** The changes in source order, for the change-by-change fallback. */
  readonly changes: { table: ApplyTable; change: RowChange }[] = [];
  bytes = 0;

  add(table: ApplyTable, change: RowChange, bytes: number): void {
    let b = this.tables.get(table);
    if (!b) this.tables.set(table, (b = new TableBatch(table.key, table.display)));
    b.add(change);
    this.changes.push({ table, change });
    this.bytes += bytes;
  }

  get size(): number {
    return this.changes.length;
  }
}

export interface PieceContext {
  dst: Client;
  /** Source session, to read rows whose unchanged values the destination lacks. */
  src: Client;
  /** Incremental verification: the keys applied go into the touched-key queue (touched.ts), at the LSN of the source transaction in flight. */
  touched?: { recorder: TouchedRecorder; lsn: Lsn };
}

export interface PieceStats {
  fallbacks: number;
  statements: number;
  /** Images applied without some unchanged TOASTed column (kept from the destination row). */
  partialImages: number;
  /** Reads of the source for unchanged values the destination lacked. */
  sourceReads: number;
}

// Parameters go as array literals built here (one pass, no per-element regexes in node-postgres).
const column = (images: Image[], i: number): string => textArrayLiteral(images.map((im) => im.values[i] as string | null));
const keyColumns = (t: ApplyTable, keys: Key[]): string[] => t.key.map((_, j) => textArrayLiteral(keys.map((k) => k[j])));

async function run(ctx: PieceContext, stats: PieceStats, sql: string, params: unknown[]) {
  stats.statements++;
  return ctx.dst.query(sql, params);
}

/**
 * Statements that do not depend on each other's answers, issued without
 * waiting (the apply session pipelines them: the destination goes from one
 * to the next without a round trip to the worker). `settle` waits for all of
 * them and fails with the first failure in statement order — the ones behind
 * it fail only because the transaction is aborted.
 */
class Pipeline {
  private sent: Promise<unknown>[] = [];
  constructor(private readonly dst: Client) {}

  send(sql: string, params?: unknown[]): void {
    const p = this.dst.query(sql, params);
    p.catch(() => undefined); // observed by settle()
    this.sent.push(p);
  }

  async settle(): Promise<void> {
    const sent = this.sent;
    if (!sent.length) return;
    this.sent = [];
    const failed = (await Promise.allSettled(sent)).find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /** Wait for what was sent, whatever its outcome (before the savepoint is rolled back to). */
  quiesce(): Promise<void> {
    return this.settle().catch(() => undefined);
  }
}

/** Fill the UNCHANGED columns of `images` from the rows at their origin keys; returns those not found. */
async function fillFrom(ctx: PieceContext, stats: PieceStats, t: ApplyTable, images: Image[], side: 'destination' | 'source'): Promise<Image[]> {
  if (!images.length) return [];
  const missing = [...new Set(images.flatMap((im) => im.values.flatMap((v, i) => (v === UNCHANGED ? [i] : []))))].sort((a, b) => a - b);
  const origins = images.map((im) => im.origin ?? im.key);
  const client = side === 'destination' ? ctx.dst : ctx.src;
  if (side === 'source') stats.sourceReads++;
  else stats.statements++;
  const r = await client.query<Record<string, string | null> & { i: number }>(readColumnsSql(t, missing, side), keyColumns(t, origins));
  const found = new Set<number>();
  for (const row of r.rows) {
    const im = images[row.i - 1];
    found.add(row.i - 1);
    missing.forEach((c, j) => {
      if (im.values[c] === UNCHANGED) im.values[c] = row[`m${j}`];
    });
    im.origin = null;
  }
  return images.filter((_, i) => !found.has(i));
}

const upsertParams = (t: ApplyTable, images: Image[]) => t.columns.map((_, i) => column(images, i));

async function upsert(ctx: PieceContext, stats: PieceStats, t: ApplyTable, images: Image[]): Promise<void> {
  if (images.length) await run(ctx, stats, upsertSql(t), upsertParams(t, images));
}

/**
 * Apply the collapsed state of one table. Deletes and complete images go
 * into `pipeline` unawaited; only partial images (and values moving with a
 * key) depend on what the destination answers, so only they wait for it.
 */
async function applyTable(ctx: PieceContext, stats: PieceStats, t: ApplyTable, batch: TableBatch, pipeline: Pipeline): Promise<void> {
  const deletes: Key[] = [];
  const full: Image[] = [];
  const moved: Image[] = [];
  const partial: Image[] = [];
  for (const f of batch.finals.values()) {
    if (f.kind === 'delete') deletes.push(f.key);
    else {
      // Complete images are only read. Partial ones get values filled in: copied, so that the
      // recorded changes stay as they were (the fallback replays them).
      if (!f.origin) full.push(f);
      else {
        const im: Image = { ...f, values: f.values.slice() };
        if (keyString(f.origin) !== keyString(f.key)) moved.push(im);
        else partial.push(im);
      }
    }
  }
  stats.partialImages += moved.length + partial.length;
  // Statements that need no answer go into the pipeline; a read waits for what is in it first
  // (an earlier failure is reported as itself, not as the aborted transaction).
  const queue = (sql: string, params: unknown[]) => {
    stats.statements++;
    pipeline.send(sql, params);
  };
  // 1. Values that move with a key change, read before the old row is deleted.
  if (moved.length) {
    await pipeline.settle();
    for (const im of await fillFrom(ctx, stats, t, moved, 'destination')) {
      im.origin = im.key; // old row absent: the new key's own row (if any) keeps its values
      partial.push(im);
    }
    full.push(...moved.filter((im) => !im.origin));
  }
  // 2. Deletes.
  if (deletes.length) queue(deleteSql(t), keyColumns(t, deletes));
  // 3. Complete images.
  if (full.length) queue(upsertSql(t), upsertParams(t, full));
  if (!partial.length) return;
  await pipeline.settle();
  // 4. Partial images, grouped by which columns they carry.
  const groups = new Map<string, { present: number[]; images: Image[] }>();
  for (const im of partial) {
    const present = im.values.flatMap((v, i) => (v === UNCHANGED ? [] : [i]));
    const sig = present.join(',');
    let g = groups.get(sig);
    if (!g) groups.set(sig, (g = { present, images: [] }));
    g.images.push(im);
  }
  const absent: Image[] = [];
  for (const g of groups.values()) {
    const r = await run(
      ctx,
      stats,
      partialUpdateSql(t, g.present),
      g.present.map((i) => column(g.images, i)),
    );
    const found = new Set((r.rows as { i: number }[]).map((x) => x.i - 1));
    g.images.forEach((im, i) => found.has(i) || absent.push(im));
  }
  if (absent.length) {
    await fillFrom(ctx, stats, t, absent, 'source'); // those gone from the source too stay absent: their delete follows in the stream
    await upsert(
      ctx,
      stats,
      t,
      absent.filter((im) => !isPartial(im.values)),
    );
  }
}

async function applyCollapsed(ctx: PieceContext, stats: PieceStats, tables: Map<ApplyTable, TableBatch>, pipeline: Pipeline): Promise<void> {
  for (const [t, batch] of tables) await applyTable(ctx, stats, t, batch, pipeline);
}

function collapse(changes: Piece['changes']): Map<ApplyTable, TableBatch> {
  const tables = new Map<ApplyTable, TableBatch>();
  for (const { table, change } of changes) {
    let b = tables.get(table);
    if (!b) tables.set(table, (b = new TableBatch(table.key, table.display)));
    b.add(change);
  }
  return tables;
}

/** Below this many changes, a range that hit an order-sensitive error is applied change by change. */
const ROW_BY_ROW = 8;

/**
 * Apply `changes` collapsed under a savepoint; on an order-sensitive
 * constraint error, roll back and apply the two halves one after the other
 * (each collapsed, in order: the same end state), down to change by change —
 * so only the few changes around the conflict lose the batching.
 */
async function applyRange(ctx: PieceContext, stats: PieceStats, changes: Piece['changes'], tables?: Map<ApplyTable, TableBatch>): Promise<void> {
  const pipeline = new Pipeline(ctx.dst);
  pipeline.send('SAVEPOINT pgshift_piece');
  try {
    if (changes.length <= ROW_BY_ROW && !tables) {
      for (const c of changes) {
        try {
          await applyCollapsed(ctx, stats, collapse([c]), pipeline);
          await pipeline.settle();
        } catch (e) {
          throw aboutChange(c, e);
        }
      }
    } else {
      await applyCollapsed(ctx, stats, tables ?? collapse(changes), pipeline);
    }
    pipeline.send('RELEASE SAVEPOINT pgshift_piece');
    await pipeline.settle();
    return;
  } catch (e) {
    await pipeline.quiesce();
    const code = (e as { code?: string }).code ?? '';
    if (!(ORDER_SENSITIVE.has(code) || rowError(code)) || (changes.length <= ROW_BY_ROW && !tables)) throw e;
    await ctx.dst.query('ROLLBACK TO SAVEPOINT pgshift_piece');
    if (tables) stats.fallbacks++;
    if (changes.length <= ROW_BY_ROW) {
      await applyRange(ctx, stats, changes);
    } else {
      const mid = Math.ceil(changes.length / 2);
      await applyRange(ctx, stats, changes.slice(0, mid));
      await applyRange(ctx, stats, changes.slice(mid));
    }
  }
  await ctx.dst.query('RELEASE SAVEPOINT pgshift_piece');
}

/** Apply a piece collapsed; an order-sensitive constraint error narrows down to change-by-change around it. */
export async function applyPiece(ctx: PieceContext, stats: PieceStats, piece: Piece): Promise<void> {
  if (!piece.size) return;
  await applyRange(ctx, stats, piece.changes, piece.tables);
  if (ctx.touched) await ctx.touched.recorder.record(ctx.dst, ctx.touched.lsn, piece.tables);
}

export async function applyTruncate(ctx: PieceContext, stats: PieceStats, tables: ApplyTable[], restartIdentity: boolean, cascade: boolean): Promise<void> {
  if (tables.length) await run(ctx, stats, truncateSql(tables, restartIdentity, cascade), []);
  if (ctx.touched) await ctx.touched.recorder.truncated(ctx.dst, ctx.touched.lsn, tables);
}

export type { Datum };
