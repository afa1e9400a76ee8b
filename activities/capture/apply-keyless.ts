// The apply of tables without a row key (acknowledged primary-keys warning,
// lib/selection.ts keylessTablesApplied). Nothing names one of their rows, so
// nothing can be upserted or collapsed: changes are applied in source order.
//
//  - Already in the copy? The table was copied at one snapshot, recorded with
//    its done mark (activities/full-load/chunk.ts). A change whose source
//    transaction that snapshot saw is in the copy and is skipped; every other
//    is applied (lib/capture/snapshot.ts). That is restart-safe: the snapshot
//    lives on the destination, not in a session (an exported snapshot dies
//    with its worker: PeerDB's "invalid snapshot identifier"). Exactly once
//    across the apply's own restarts comes from the applied position, as for
//    every table.
//  - INSERT: plain insert (consecutive inserts into one table in one
//    multi-row statement).
//  - UPDATE / DELETE: REPLICA IDENTITY FULL sends the whole old row (TOASTed
//    values included); the change goes to exactly one destination row equal
//    to it (lib/capture/keyless-sql.ts) — among identical rows any one. No
//    such row means the destination diverged: the apply stops with a
//    non-retryable error naming the table and the row, never silently.
//    Unchanged TOASTed values of the new image come from the old one.
//  - TRUNCATE: applied (or skipped when the snapshot saw it) with the others.
// Row filters apply: an update that leaves the filter deletes the row, one
// that enters it inserts it.
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { type Lsn, formatLsn } from '../../lib/capture/lsn';
import { type Datum, type PgoutputMessage, UNCHANGED } from '../../lib/capture/pgoutput';
import { deleteOneSql, filterSql, keylessInsertSql, narrows, type Statement, updateOneSql } from '../../lib/capture/keyless-sql';
import { type ChunkSnapshot, parseSnapshot, snapshotSaw } from '../../lib/capture/snapshot';
import type { ApplyColumn, ApplyTable, KeylessTable } from '../../lib/capture/sql';
import { FAILURE } from '../retry';
import type { PieceStats } from './apply-batch';

/** The source transaction a change belongs to (from its Begin message). */
export interface SourceTxn {
  xid: number;
  /** Start of its commit record. */
  commitLsn: Lsn;
}

type Image = (string | null)[];

export type KeylessChange = { table: ApplyTable; txn: SourceTxn } & (
  { op: 'insert'; values: Image } | { op: 'update'; old: Image; values: Image } | { op: 'delete'; old: Image }
);

/**
 * What the apply needs of a table without key on the destination: the
 * snapshots of its copied chunks (none without a full load: incremental-only
 * starts from a destination that holds the rows as of the slot). A copy not
 * planned or not finished yet, or finished without a recorded snapshot, leaves
 * nothing to decide by: the apply refuses to start rather than guess.
 */
export async function readKeylessTable(
  dst: Client,
  config: Pick<Config, 'name' | 'mode'>,
  tableKey: string,
  display: string,
  columns: ApplyColumn[],
  oid: number,
): Promise<KeylessTable> {
  const migration = config.name;
  const kind = await dst.query<{ relkind: string }>('SELECT relkind::text AS relkind FROM pg_class WHERE oid = $1', [oid]);
  const snapshots: ChunkSnapshot[] = [];
  const planned = await dst.query<{ t: string | null }>(`SELECT to_regclass('pgshift.chunks')::text AS t`);
  if (planned.rows[0].t) {
    const chunks = await dst.query<{ chunk: number; state: string; snapshot: string | null; seen_before: string | null }>(
      `SELECT chunk, state, snapshot, snapshot_max_lsn::text AS seen_before FROM pgshift.chunks WHERE migration = $1 AND table_key = $2 ORDER BY chunk`,
      [migration, tableKey],
    );
    for (const c of chunks.rows) {
      if (c.state !== 'done') {
        throw new Error(`${display}: chunk ${c.chunk + 1} is not copied yet; the changes of a table without key are applied only once its copy is complete`);
      }
      if (!c.snapshot || !c.seen_before) {
        throw ApplicationFailure.nonRetryable(
          `${display} (no key) was copied without a recorded snapshot (by an earlier pgshift version, or from a standby): ` +
            'which captured changes the copy already holds cannot be decided; truncate it on the destination, mark its chunks pending ' +
            `(UPDATE pgshift.chunks SET state = 'pending' WHERE migration = '${migration}' AND table_key = '${tableKey}') and run the migration again`,
          FAILURE.invalidInput,
        );
      }
      snapshots.push(parseSnapshot(c.snapshot, c.seen_before));
    }
  }
  // With a full load, a table not planned yet will be copied later: applying its changes now would duplicate them.
  if (config.mode.full && !snapshots.length) {
    throw new Error(`${display}: not copied yet; the changes of a table without key are applied only once its copy is complete`);
  }
  return { snapshots, narrow: columns.map((c) => narrows(c.type)), partitioned: kind.rows[0]?.relkind === 'p' };
}

/** True when the copy of `t` already holds the effect of `txn` (its changes are skipped). */
export function copyHolds(t: ApplyTable, txn: SourceTxn): boolean {
  const snaps = t.keyless!.snapshots;
  if (!snaps.length) return false;
  const saw = snaps.map((s) => snapshotSaw(s, txn.xid, txn.commitLsn));
  if (saw.every(Boolean)) return true;
  if (!saw.some(Boolean)) return false;
  // Chunks copied at different snapshots (planned as page ranges): a row of this transaction may be in either.
  throw ApplicationFailure.nonRetryable(
    `${t.display} (no key) was copied in ${snaps.length} chunks at different snapshots, and source transaction ${txn.xid} ` +
      `(commit at ${formatLsn(txn.commitLsn)}) is in some of them only: where its rows are cannot be decided; copy the table again in one chunk`,
    FAILURE.invalidInput,
  );
}

/** The change of a pgoutput row message, values in table column order (`reorder`). */
export function keylessChange(t: ApplyTable, m: PgoutputMessage, txn: SourceTxn, reorder: (tuple: Datum[]) => Datum[]): KeylessChange {
  const complete = (d: Datum[], what: string): Image => {
    if (d.some((v) => v === UNCHANGED)) throw new Error(`${t.display}: ${what} lacks an unchanged TOASTed value (replica identity is not FULL)`);
    return d as Image;
  };
  if (m.tag === 'insert') return { table: t, txn, op: 'insert', values: complete(reorder(m.new), 'an inserted row') };
  if (m.tag === 'delete') {
    if (m.oldKind !== 'O') throw new Error(`${t.display}: a DELETE without the whole old row: set REPLICA IDENTITY FULL on the source table`);
    return { table: t, txn, op: 'delete', old: complete(reorder(m.old), 'the old row of a DELETE') };
  }
  if (m.tag !== 'update') throw new Error(`unexpected ${m.tag}`);
  if (!m.old || m.oldKind !== 'O') throw new Error(`${t.display}: an UPDATE without the whole old row: set REPLICA IDENTITY FULL on the source table`);
  const old = complete(reorder(m.old), 'the old row of an UPDATE');
  const values = reorder(m.new).map((v, i) => (v === UNCHANGED ? old[i] : v));
  return { table: t, txn, op: 'update', old, values };
}

/** Changes of tables without key waiting to be applied, in source order (bounded by the caller like a piece). */
export class KeylessChanges {
  changes: KeylessChange[] = [];
  bytes = 0;
  /** Changes skipped because the copy already held them. */
  skipped = 0;

  add(c: KeylessChange, bytes: number): void {
    this.changes.push(c);
    this.bytes += bytes;
  }

  get size(): number {
    return this.changes.length;
  }

  /** The queued changes, leaving the queue empty (they are applied while the next ones are read). */
  take(): KeylessChange[] {
    const out = this.changes;
    this.changes = [];
    this.bytes = 0;
    return out;
  }
}

const shown = (v: string | null) => (v === null ? 'NULL' : `'${(v.length > 80 ? `${v.slice(0, 80)}…` : v).replace(/'/g, "''")}'`);

function diverged(c: Extract<KeylessChange, { op: 'update' | 'delete' }>): never {
  const t = c.table;
  const row = t.columns.map((col, i) => `${col.target} = ${shown(c.old[i])}`).join(', ');
  throw ApplicationFailure.nonRetryable(
    `${t.display} (no key): no destination row equals the old row of a source ${c.op.toUpperCase()} ` +
      `(transaction ${c.txn.xid}, commit at ${formatLsn(c.txn.commitLsn)}): ${row.length > 1000 ? `${row.slice(0, 1000)}…` : row} — ` +
      'the destination has diverged from the source for this table (changed there by hand?); compare and repair it, or copy it again, then restart the migration',
    FAILURE.divergence,
  );
}

async function run(dst: Client, stats: PieceStats, s: Statement): Promise<number> {
  stats.statements++;
  return (await dst.query(s.sql, s.params)).rowCount ?? 0;
}

async function applyOne(dst: Client, stats: PieceStats, c: Extract<KeylessChange, { op: 'update' | 'delete' }>): Promise<void> {
  const t = c.table;
  const k = t.keyless!;
  // With a row filter, the old row is on the destination only if it matched; the new one belongs there only if it matches.
  let oldIn = true;
  let newIn = c.op === 'update';
  if (t.filter) {
    stats.statements++;
    const images = c.op === 'update' ? [c.old, c.values] : [c.old];
    const f = filterSql(t, images);
    const r = (await dst.query<{ k0: boolean; k1?: boolean }>(f.sql, f.params)).rows[0];
    oldIn = r.k0;
    newIn = c.op === 'update' && !!r.k1;
  }
  const must = (n: number) => {
    if (n !== 1 && oldIn) diverged(c);
    return n;
  };
  if (c.op === 'update' && newIn) {
    // A row that was outside the filter enters it: inserted.
    if (must(await run(dst, stats, updateOneSql(t, k.narrow, k.partitioned, c.old, c.values))) === 0) await insertImages(dst, stats, t, [c.values]);
    return;
  }
  // A delete, or an update that leaves the row filter.
  must(await run(dst, stats, deleteOneSql(t, k.narrow, k.partitioned, c.old)));
}

async function insertImages(dst: Client, stats: PieceStats, t: ApplyTable, images: Image[]): Promise<void> {
  await run(dst, stats, {
    sql: keylessInsertSql(t),
    params: t.columns.map((_, i) => images.map((im) => im[i])) as unknown as (string | null)[],
  });
}

/** Apply the queued changes in source order inside the open destination transaction; the queue is emptied. */
export async function applyKeyless(dst: Client, stats: PieceStats, cs: KeylessChange[]): Promise<void> {
  for (let i = 0; i < cs.length;) {
    const c = cs[i];
    if (c.op === 'insert') {
      let j = i + 1;
      while (j < cs.length && cs[j].op === 'insert' && cs[j].table === c.table) j++;
      await insertImages(
        dst,
        stats,
        c.table,
        cs.slice(i, j).map((x) => (x as Extract<KeylessChange, { op: 'insert' }>).values),
      );
      i = j;
      continue;
    }
    await applyOne(dst, stats, c);
    i++;
  }
}
