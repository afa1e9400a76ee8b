// The change apply: one long activity that streams the slot and applies the
// changes on the destination until cancelled (or until a given position).
//
// Exactly once: the applied position — the commit end LSN of the last source
// transaction applied — is written in the destination in the same fenced
// transaction as the data. On (re)start the stream resumes there and every
// transaction whose commit is at or before it is skipped. The slot is only
// ever confirmed up to a durably applied position, so a crash anywhere
// re-applies nothing and skips nothing.
//
// Batching: many source transactions go into one destination transaction
// (committed when the stream has nothing more for now, after ~100 ms, or
// after many changes), always at a source commit boundary. Within it, changes
// are applied in pieces of bounded size (lib/capture/batch.ts collapses each
// piece per key), so a transaction of any size streams through in bounded
// memory. Tables without a row key are not collapsed: their changes are
// applied in source order by whole-row image, those their copy already holds
// skipped (apply-keyless.ts).
//
// DDL: a row of the source's DDL log (in the publication) is replayed at its
// position, in the destination transaction of its source transaction, after
// the changes before it are flushed (ddl-replay.ts); a DDL the apply cannot
// replay ends the round before that source transaction (result `ddl.blocked`)
// until the operator skips it.
//
// Lag: seconds = source now − source commit time of the newest applied
// transaction (both source clock); the heartbeat row this activity updates
// every second is such a transaction, so an idle source still shows a lag
// near zero, and a backlog shows its true age from the first applied
// transaction on. Bytes = the source's current WAL position − the slot's
// confirmed position. Keepalives and transactions with nothing to apply move
// the position forward, so an idle source shows no growing lag.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { captureSlotName, DDL_LOG_TABLE, ddlCaptureNames, HEARTBEAT_TABLE, SOURCE_CONTROL_SCHEMA } from '../../lib/capture/names';
import { formatLsn, type Lsn, maxLsn, parseLsn } from '../../lib/capture/lsn';
import { type Datum, type PgoutputMessage, UNCHANGED } from '../../lib/capture/pgoutput';
import { type Key, keyOf, type RowChange } from '../../lib/capture/batch';
import type { ApplyTable } from '../../lib/capture/sql';
import { clientConfig, describeConnectError, isConnectionError } from '../../lib/io/pg';
import { displayName, qualified } from '../../lib/ident';
import { RateLimiter } from '../../lib/throttle';
import { keylessTablesApplied } from '../../lib/selection';
import { fenced } from '../control';
import { applicationName, session } from '../../lib/io/session';
import { readCopyTables, type CopyTable } from '../full-load/tables';
import { heartbeat } from '../heartbeat';
import { queryLiveThrottle } from '../live-throttle';
import { advanceApplied, readCapture, readTablesView, writeTablesView } from './control';
import { applyPiece, applyTruncate, Piece, type PieceStats } from './apply-batch';
import { applyKeyless, copyHolds, keylessChange, KeylessChanges, readKeylessTable, type SourceTxn } from './apply-keyless';
import { beatSource } from './prepare-source';
import { DdlBlocked, type DdlColumns, ddlColumns, ddlEntry, DdlReplay } from './ddl-replay';
import { ChangeStream, type StreamItem, type StreamOptions } from './stream';
import { ensureTouchedTable, TouchedRecorder, type TouchedCounts, touchedTableKey } from './touched';
import type { ApplyPosition, ApplyRound, DdlEvent, SlotWal } from '../../lib/capture-progress';

export interface ApplyInput {
  config: Config;
  runToken: string;
  /** Return once the applied position reaches this LSN (the transaction that crosses it is the last one applied). */
  stopAtLsn?: string;
  /**
   * The cutover's fence position: a change of a migrated table committed after
   * it means a write got past the fence; the apply fails (non-retryable) and
   * names it rather than apply or drop it silently.
   */
  fenceLsn?: string;
  /** Rows per second at start (null: unlimited); refreshed while running. */
  rowsPerSecond?: number | null;
  /**
   * Return after about this many seconds, at a destination commit (whatever was
   * received and not applied is streamed again by the next call, from the
   * applied position). The workflow calls the apply in such rounds, so it learns
   * the position and the lag and can pause, hand over or cut over in between.
   */
  maxSeconds?: number;
  /** DDL log entries the operator skipped (pgshift ddl skip): not replayed. */
  ddlSkips?: number[];
  /** Queue the keys applied for incremental verification (touched.ts; with verification.incremental, past the consistency point). */
  recordTouched?: boolean;
}

/** The round's result: where it stands when it returned (lag as of then), and what it did. */
export interface ApplyResult extends ApplyRound {
  partialImages: number;
  /** Changes of tables without key skipped because their copy already held them. */
  keylessSkipped: number;
  sourceReads: number;
  statements: number;
  /** Stream queue high-water marks and read pauses (memory bound). */
  stream: { maxQueuedItems: number; maxQueuedBytes: number; pauses: number };
  /** Keys queued for incremental verification and left out by its sampling (absent when not recording). */
  touched?: TouchedCounts;
  /** The tables this round wrote (copy-plan key and display), for a cutover that verifies what changed; null: more than CHANGED_TABLES_LIMIT. */
  changedTables?: { key: string; display: string }[] | null;
}

export const CHANGED_TABLES_LIMIT = 200;

/** Heartbeat details of the running apply. */
export interface ApplyBeat extends ApplyPosition {
  changesPerSecond: number;
  rowsPerSecond: number | null;
}

export interface ThrottleSource {
  /** Current rows/s limit (null: none); undefined keeps the last one. */
  current(): Promise<number | null | undefined>;
}

export interface ApplyTuning {
  /** Changes per piece (one set of statements per table). */
  pieceChanges: number;
  pieceBytes: number;
  /** Longest a destination transaction collects source transactions. */
  batchMs: number;
  batchChanges: number;
  beatMs: number;
  sourceBeatMs: number;
  /** Stream queue bounds: reading pauses above them. */
  queueItems: number;
  queueBytes: number;
  /**
   * Cancelled inside a source transaction, the destination transaction waits
   * this long for that transaction's commit (and commits there); past it, it
   * rolls back (the next round streams it again from the applied position).
   */
  cancelGraceMs: number;
}

export interface ApplyOptions {
  signal?: AbortSignal;
  throttle?: ThrottleSource;
  onBeat?: (b: ApplyBeat) => void;
  tuning?: Partial<ApplyTuning>;
}

const DEFAULT_TUNING: ApplyTuning = {
  pieceChanges: 5_000,
  pieceBytes: 16 << 20,
  batchMs: 100,
  batchChanges: 50_000,
  beatMs: 2_000,
  sourceBeatMs: 1_000,
  queueItems: 20_000,
  queueBytes: 32 << 20,
  cancelGraceMs: 2_000,
};

/** The apply's rows/s from the workflow's live throttle (undefined: keep the last one). */
const workflowThrottle = (): ThrottleSource => ({ current: async () => (await queryLiveThrottle())?.throttle.incrementalRowsPerSecond });

function activitySignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

type Relation =
  | { kind: 'table'; table: ApplyTable; map: number[]; identity: boolean }
  | { kind: 'heartbeat'; migration: number; beatAt: number }
  | { kind: 'ddl'; columns: DdlColumns }
  | { kind: 'unknown'; display: string };

/** Destination types and key check for each selected table. */
async function applyTables(dst: Client, config: Config, tables: CopyTable[]): Promise<Map<string, ApplyTable>> {
  const out = new Map<string, ApplyTable>();
  for (const t of tables) {
    if (!t.chunkKey && !keylessTablesApplied(config)) {
      throw new Error(
        `${t.display} has no PRIMARY KEY or non-null UNIQUE key: its changes cannot be applied by key (add a key, exclude it, or acknowledge the precheck warning primary-keys)`,
      );
    }
    const target = displayName(t.target.schema, t.target.table);
    const reg = await dst.query<{ oid: number | null }>('SELECT to_regclass($1)::oid AS oid', [qualified(t.target.schema, t.target.table)]);
    const oid = reg.rows[0].oid;
    if (!oid) throw new Error(`destination table ${target} does not exist: create the schema before applying changes`);
    const cols = await dst.query<{ name: string; type: string; always: boolean }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type, attidentity = 'a' AS always
         FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`,
      [oid],
    );
    const byName = new Map(cols.rows.map((c) => [c.name, c]));
    const columns = t.columns.map((c, i) => {
      const d = byName.get(t.targetColumns[i]);
      if (!d) throw new Error(`destination table ${target} has no column ${JSON.stringify(t.targetColumns[i])} (source ${t.display}.${c.name})`);
      return { source: c.name, target: t.targetColumns[i], type: d.type, identityAlways: d.always };
    });
    if (!t.chunkKey) {
      // No key: applied by whole-row image (apply-keyless.ts).
      out.set(JSON.stringify([t.schema, t.table]), {
        display: t.display,
        source: { schema: t.schema, table: t.table },
        target: t.target,
        columns,
        key: [],
        sourceKeyTypes: [],
        filter: t.filter,
        keyless: await readKeylessTable(dst, config, t.key, t.display, columns, oid),
      });
      continue;
    }
    const key = t.chunkKey.columns.map((k) => t.columns.findIndex((c) => c.name === k));
    const keyTargets = key.map((i) => columns[i].target).sort();
    const uniq = await dst.query<{ cols: string[] }>(
      `SELECT array_agg(a.attname::text ORDER BY a.attname::text) AS cols FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) AS k(attnum) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
        GROUP BY i.indexrelid`,
      [oid],
    );
    if (!uniq.rows.some((r) => JSON.stringify(r.cols) === JSON.stringify(keyTargets))) {
      throw new Error(`destination table ${target} has no unique index on its key (${keyTargets.join(', ')}): it must exist before changes are applied`);
    }
    out.set(JSON.stringify([t.schema, t.table]), {
      display: t.display,
      source: { schema: t.schema, table: t.table },
      target: t.target,
      columns,
      key,
      sourceKeyTypes: t.chunkKey.types,
      filter: t.filter,
    });
  }
  return out;
}

type StoredTable = Omit<ApplyTable, 'keyless'> & { keylessTable?: 'copied' | 'created' };

/** The apply's tables as recorded on the destination with the applied position (activities/capture/control.ts readTablesView). */
async function storedTables(dst: Client, config: Config): Promise<Map<string, ApplyTable> | null> {
  const stored = await readTablesView<StoredTable>(dst, config.name);
  if (!stored) return null;
  const out = new Map<string, ApplyTable>();
  for (const { keylessTable, ...t } of stored) {
    const table: ApplyTable = t;
    if (keylessTable) {
      const reg = await dst.query<{ oid: number | null }>('SELECT to_regclass($1)::oid AS oid', [qualified(t.target.schema, t.target.table)]);
      if (!reg.rows[0].oid) throw new Error(`destination table ${displayName(t.target.schema, t.target.table)} does not exist`);
      const created = keylessTable === 'created';
      const c = created ? { name: config.name, mode: { ...config.mode, full: false } } : config;
      const keyless = await readKeylessTable(dst, c, JSON.stringify([t.source.schema, t.source.table]), t.display, t.columns, reg.rows[0].oid);
      table.keyless = created ? { ...keyless, created } : keyless;
    }
    out.set(JSON.stringify([t.source.schema, t.source.table]), table);
  }
  return out;
}

async function saveTables(dst: Client, config: Config, tables: Map<string, ApplyTable>): Promise<void> {
  const list: StoredTable[] = [...tables.values()].map(({ keyless, ...t }) => ({
    ...t,
    ...(keyless ? { keylessTable: keyless.created ? 'created' : 'copied' } : {}),
  }));
  await writeTablesView(dst, config.name, list);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export async function applyChanges(input: ApplyInput, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const { config, runToken } = input;
  const tuning = { ...DEFAULT_TUNING, ...opts.tuning };
  const throttleSource = opts.throttle ?? workflowThrottle();
  const started = Date.now();
  // Cancellation (pause, hand-over, abort: activity or caller) ends the round
  // at a destination commit, and the round returns its result like one that
  // ran out of time, so the workflow's counters keep what it applied. A
  // failure of a background task fails it. `signal` wakes every wait on either.
  const stop = new AbortController();
  const failing = new AbortController();
  // The sessions stay open through a cancellation (the round ends at a commit
  // of its own); only a round that has not ended well after the grace (a
  // statement stuck on a lock) has them ended, and fails as cancelled.
  const hardStop = new AbortController();
  let hardTimer: NodeJS.Timeout | undefined;
  let cancelledAt: number | null = null;
  const onCancel = (reason: unknown) => {
    if (cancelledAt !== null) return;
    cancelledAt = Date.now();
    hardTimer = setTimeout(() => hardStop.abort(reason), tuning.cancelGraceMs + 10_000);
    stop.abort(reason);
  };
  const external = [opts.signal, activitySignal()].filter((s): s is AbortSignal => !!s);
  for (const s of external) {
    if (s.aborted) onCancel(s.reason);
    else s.addEventListener('abort', () => onCancel(s.reason), { once: true });
  }
  const signal = stop.signal;
  /** Thrown inside a batch cancelled mid-transaction: the destination transaction rolls back. */
  const rolledBack = new Error('apply round cancelled inside a source transaction');

  // Data profile: values cross as exact text; named as a writer, so a fence ends it.
  const dst = await session(config, 'destination', 'apply', hardStop.signal);
  let src: Client | undefined;
  let stream: ChangeStream | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    let replicaRole = true;
    try {
      await dst.query('SET session_replication_role = replica');
    } catch (e) {
      if ((e as { code?: string }).code !== '42501') throw e;
      replicaRole = false; // the precheck warned: FK checks and user triggers fire on applied changes
    }
    src = await session(config, 'source', 'capture', hardStop.signal);
    const srcClient = src;

    const capture = await readCapture(dst, config.name);
    if (!capture) throw new Error(`no change capture is recorded for migration ${config.name} on the destination: prepareSource has not run`);
    const slot = captureSlotName(config);
    if (capture.slotName !== slot) throw new Error(`the destination records slot ${capture.slotName}, the config names ${slot}`);
    const ddlCapture = !!(await src.query('SELECT 1 FROM pg_event_trigger WHERE evtname = $1', [ddlCaptureNames(config).endTrigger])).rowCount;
    // With DDL capture, the tables as of the applied position (the source's catalog may be ahead of it).
    const tables = (ddlCapture && (await storedTables(dst, config))) || (await applyTables(dst, config, await readCopyTables(src, config)));
    if (ddlCapture) await saveTables(dst, config, tables);
    const touched =
      input.recordTouched && config.verification.incremental ? new TouchedRecorder(config.name, config.verification.incrementalRowsPerSecond) : null;
    if (touched) await ensureTouchedTable(dst);
    /** The tables changes were applied to (an ApplyTable per mapping: DDL may map a table again). */
    const changedTables = new Set<ApplyTable>();

    let persisted: Lsn = parseLsn(capture.appliedLsn);
    let position: Lsn = persisted;
    let received: Lsn = persisted;
    let durableSourceTime: string | null = capture.sourceTime;
    const stopAt = input.stopAtLsn ? parseLsn(input.stopAtLsn) : null;
    const fenceAt = input.fenceLsn ? parseLsn(input.fenceLsn) : null;
    const stats: PieceStats = { fallbacks: 0, statements: 0, partialImages: 0, sourceReads: 0 };
    let transactions = 0;
    let changes = 0;
    let rowsPerSecond = input.rowsPerSecond ?? config.throttle.incrementalRowsPerSecond ?? null;
    const limiter = new RateLimiter({ rowsPerSecond, bytesPerSecond: null }, 100, undefined, (ms) => sleep(ms, signal));
    const fail = (e: unknown) => {
      if (failing.signal.aborted) return;
      const err = e instanceof Error ? e : new Error(String(e));
      failing.abort(err);
      stop.abort(err);
    };
    /** The next stream item; undefined once the round is cancelled (or, with `timeoutMs`, when nothing arrived in time). */
    const next = async (timeoutMs?: number): Promise<StreamItem | undefined> => {
      if (failing.signal.aborted) throw failing.signal.reason;
      if (cancelledAt !== null) return undefined;
      try {
        return timeoutMs === undefined ? await s.next(signal) : await s.next(signal, timeoutMs);
      } catch (e) {
        if (failing.signal.aborted) throw failing.signal.reason;
        if (cancelledAt !== null) return undefined;
        throw e;
      }
    };

    /** A queued stream item without waiting (most of them, in a catch-up); undefined when none is, or the round is ending. */
    const takeQueued = (): StreamItem | undefined => (failing.signal.aborted || cancelledAt !== null ? undefined : s.take());

    // Background: source heartbeat every second, lag + activity heartbeat, throttle refresh.
    let lag: { seconds: number | null; bytes: number | null } = { seconds: null, bytes: null };
    let wal: SlotWal | null = null;
    const standing = (): ApplyPosition => ({
      appliedLsn: formatLsn(position),
      receivedLsn: formatLsn(received),
      lagSeconds: lag.seconds,
      lagBytes: lag.bytes,
      transactions,
      changes,
      fallbacks: stats.fallbacks,
      replicaRole,
      wal,
    });
    const beat = async () => {
      // safe_wal_size and wal_status exist from PG13 on (read through to_jsonb so PG11/12 give null), as does max_slot_wal_keep_size.
      const r = await srcClient.query<{
        bytes: string | null;
        seconds: string | null;
        retained: string | null;
        safe: string | null;
        wal_status: string | null;
        max_keep: string | null;
      }>(
        `SELECT (pg_current_wal_lsn() - s.confirmed_flush_lsn)::text AS bytes,
                extract(epoch FROM clock_timestamp() - $2::timestamptz)::text AS seconds,
                (pg_current_wal_lsn() - s.restart_lsn)::text AS retained,
                to_jsonb(s) ->> 'safe_wal_size' AS safe,
                to_jsonb(s) ->> 'wal_status' AS wal_status,
                (SELECT CASE WHEN setting <> '-1' THEN pg_size_bytes(setting || coalesce(unit, ''))::text END
                   FROM pg_settings WHERE name = 'max_slot_wal_keep_size') AS max_keep
           FROM pg_replication_slots s WHERE s.slot_name = $1`,
        [slot, durableSourceTime],
      );
      const row = r.rows[0];
      lag = { seconds: row?.seconds != null ? Math.max(0, Number(row.seconds)) : null, bytes: row?.bytes != null ? Number(row.bytes) : null };
      const num = (v: string | null | undefined) => (v != null ? Number(v) : null);
      wal = row ? { retainedBytes: num(row.retained), safeBytes: num(row.safe), maxKeepBytes: num(row.max_keep), walStatus: row.wal_status ?? null } : null;
      const t = await throttleSource.current();
      if (t !== undefined && t !== rowsPerSecond) {
        rowsPerSecond = t;
        limiter.setRates({ rowsPerSecond, bytesPerSecond: null });
      }
      const details: ApplyBeat = {
        ...standing(),
        changesPerSecond: Math.round(changes / Math.max((Date.now() - started) / 1000, 0.001)),
        rowsPerSecond,
      };
      heartbeat(details);
      opts.onBeat?.(details);
    };
    let beating = false;
    let sourceBeating = false;
    timers.push(
      setInterval(() => {
        if (sourceBeating) return;
        sourceBeating = true;
        beatSource(srcClient, config.name).then(() => (sourceBeating = false), fail);
      }, tuning.sourceBeatMs),
      setInterval(() => {
        if (beating) return;
        beating = true;
        beat().then(() => (beating = false), fail);
      }, tuning.beatMs),
    );

    // The stream, resumed at the applied position.
    stream = await openStream(config, srcClient, slot, capture.publication, persisted, signal, { maxItems: tuning.queueItems, maxBytes: tuning.queueBytes });
    const s = stream;

    const relations = new Map<number, Relation>();
    const ddl = new DdlReplay(config, dst, tables, new Set(input.ddlSkips ?? []), () => saveTables(dst, config, tables));
    let ddlBlocked: DdlEvent | null = null;
    let inTxn = false;
    let skipping = false;
    /** The source transaction being read (tables without key need its xid). */
    let txn: SourceTxn = { xid: 0, commitLsn: 0n };
    let txnCommitTime = 0n;
    const keyless = new KeylessChanges();

    const relationOf = (oid: number): Relation => {
      const r = relations.get(oid);
      if (!r) throw new Error(`pgoutput: change for relation ${oid} before its Relation message`);
      return r;
    };

    const onRelation = (m: Extract<PgoutputMessage, { tag: 'relation' }>) => {
      if (m.schema === SOURCE_CONTROL_SCHEMA && m.name === HEARTBEAT_TABLE) {
        relations.set(m.relationOid, {
          kind: 'heartbeat',
          migration: m.columns.findIndex((c) => c.name === 'migration'),
          beatAt: m.columns.findIndex((c) => c.name === 'beat_at'),
        });
        return;
      }
      if (m.schema === SOURCE_CONTROL_SCHEMA && m.name === DDL_LOG_TABLE) {
        relations.set(m.relationOid, { kind: 'ddl', columns: ddlColumns(m.columns.map((c) => c.name)) });
        return;
      }
      const t = tables.get(JSON.stringify([m.schema, m.name]));
      if (!t) {
        relations.set(m.relationOid, { kind: 'unknown', display: `${m.schema}.${m.name}` });
        return;
      }
      const map = m.columns.map((c) => t.columns.findIndex((x) => x.source === c.name));
      const unknown = m.columns.filter((_, j) => map[j] < 0).map((c) => c.name);
      if (unknown.length || m.columns.length !== t.columns.length) {
        throw new Error(
          `${t.display} changed on the source: its published columns (${m.columns.map((c) => c.name).join(', ')}) differ from the migrated ones (${t.columns.map((c) => c.source).join(', ')}). ` +
            `DDL is replicated only when the source role may create event triggers (superuser; precheck item ddl-capture): make the same change on the destination table ` +
            `by hand (mapped names), then restart the migration's apply (it resumes where it stopped); or abort and start again`,
        );
      }
      relations.set(m.relationOid, { kind: 'table', table: t, map, identity: map.every((to, from) => to === from) });
    };

    /** A tuple in table column order (the decoded tuple itself when the orders agree: it is not shared). */
    const reorder = (rel: Extract<Relation, { kind: 'table' }>, tuple: Datum[]): Datum[] => {
      if (rel.identity) return tuple;
      const out: Datum[] = new Array(rel.table.columns.length);
      rel.map.forEach((to, from) => (out[to] = tuple[from]));
      return out;
    };

    /** A row change in table column order (null for changes that are not ours to apply). */
    const rowChange = (rel: Extract<Relation, { kind: 'table' }>, m: PgoutputMessage): RowChange => {
      const t = rel.table;
      if (m.tag === 'insert') return { op: 'insert', values: reorder(rel, m.new) };
      if (m.tag === 'delete') {
        const old = reorder(rel, m.old);
        return { op: 'delete', oldKey: keyOf(old, t.key, `${t.display} (delete)`) };
      }
      if (m.tag !== 'update') throw new Error(`unexpected ${m.tag}`);
      const values = reorder(rel, m.new);
      let oldKey: Key | null = null;
      if (m.old) {
        const old = reorder(rel, m.old);
        // Replica identity full: the old row is complete, unchanged TOAST values included.
        if (m.oldKind === 'O') values.forEach((v, i) => v === UNCHANGED && (values[i] = old[i]));
        const k = keyOf(old, t.key, `${t.display} (old key)`);
        const nk = keyOf(values, t.key, `${t.display} (new key)`);
        if (k.some((v, i) => v !== nk[i])) oldKey = k;
      }
      return { op: 'update', oldKey, values };
    };

    /** Confirm a position reached without anything to apply; persisted at most once a second. */
    let lastIdlePersist = 0;
    const persistIdle = async () => {
      lastIdlePersist = Date.now();
      const to = position;
      await fenced(dst, config.name, runToken, () => advanceApplied(dst, config.name, formatLsn(persisted), formatLsn(to), null));
      persisted = to;
    };
    const advanceIdle = async (lsn: Lsn) => {
      if (lsn <= position) return;
      position = lsn;
      s.confirm(position);
      if (Date.now() - lastIdlePersist >= 1000 || (stopAt !== null && position >= stopAt)) await persistIdle();
    };

    const needsDestination = (item: StreamItem): boolean => {
      if (item.kind !== 'message' || skipping) return false;
      const m = item.msg;
      if (m.tag === 'insert' || m.tag === 'update' || m.tag === 'delete') {
        const rel = relationOf(m.relationOid);
        if (rel.kind === 'table') return true;
        if (rel.kind === 'unknown') throw new Error(`change to ${rel.display}, which is not in the migration's table list`);
        if (rel.kind === 'ddl') return m.tag === 'insert' && m.new[rel.columns.migration] === config.name;
        return m.tag !== 'delete' && m.new[rel.migration] === config.name;
      }
      if (m.tag === 'truncate') return m.relationOids.some((oid) => relationOf(oid).kind === 'table');
      return false;
    };

    /** Track transaction boundaries and relations for any item (inside or outside a batch). */
    const track = (item: StreamItem): void => {
      if (item.kind === 'error') throw item.error;
      if (item.kind !== 'message') return;
      const m = item.msg;
      if (m.tag === 'relation') onRelation(m);
      else if (m.tag === 'begin') {
        inTxn = true;
        // Already applied: its commit is before the applied position.
        skipping = m.finalLsn < position;
        txn = { xid: m.xid, commitLsn: m.finalLsn };
        txnCommitTime = m.commitTime;
      }
    };

    /** One destination transaction: `first` and what follows, up to a source commit where the batch should end. */
    const batch = async (first: StreamItem) => {
      const openedAt = Date.now();
      // Deferrable constraints are checked at commit, where the state is the
      // source's at a commit: a value swapped in one source statement arrives
      // as two row changes, valid together but not one by one.
      await dst.query('SET CONSTRAINTS ALL DEFERRED');
      let batchEnd: Lsn = position;
      let batchChanges = 0;
      let sourceTime: bigint | null = null;
      let piece = new Piece();
      let unthrottled = 0;
      /** A DDL was replayed: the batch ends at this source transaction's commit (an enum value added is usable only once committed). */
      let ddlSeen = false;
      // Pipelined: a full piece is applied while the next one is read and
      // collapsed (the worker and the destination work at the same time). One
      // piece is in flight at most, so the destination applies them in order;
      // whatever needs the destination itself (a DDL, a TRUNCATE, the commit)
      // waits for it first.
      let inflight: Promise<void> | null = null;
      /** Reads since the event loop last ran: the destination's answers are only handled when it does. */
      let sinceYield = 0;
      const settle = async () => {
        const p = inflight;
        inflight = null;
        await p;
      };
      /** The piece in flight has ended, whichever way (its failure is the caller's to report). */
      const quiesce = () => inflight?.catch(() => undefined);
      const flush = async () => {
        if (unthrottled) {
          await limiter.take(unthrottled, 0);
          unthrottled = 0;
          if (failing.signal.aborted) throw failing.signal.reason;
        }
        await settle();
        if (!piece.size && !keyless.size) return;
        const ctx = { dst, src: srcClient, ...(touched && { touched: { recorder: touched, lsn: txn.commitLsn } }) };
        const applying = piece;
        piece = new Piece();
        // Tables without key after the keyed ones; without replica role (FK checks fire) the two never hold changes at once.
        const keylessChanges = keyless.size ? keyless.take() : null;
        inflight = (async () => {
          await applyPiece(ctx, stats, applying);
          if (keylessChanges) await applyKeyless(dst, stats, keylessChanges);
        })();
        inflight.catch(() => undefined); // observed by settle()
      };
      /** Everything read so far applied in the destination transaction. */
      const drain = async () => {
        await flush();
        await settle();
      };
      const paceAndFlush = async () => {
        if (unthrottled >= 100) {
          await limiter.take(unthrottled, 0);
          unthrottled = 0;
        }
        if (piece.size + keyless.size >= tuning.pieceChanges || piece.bytes + keyless.bytes >= tuning.pieceBytes) await flush();
      };
      /**
       * A row change was queued: count it, pace it, and apply the pending piece once it is full.
       * A promise only when there is something to wait for (most changes have not: no await, no promise).
       */
      const added = (): Promise<void> | undefined => {
        batchChanges++;
        changes++;
        if (++unthrottled >= 100 || piece.size + keyless.size >= tuning.pieceChanges || piece.bytes + keyless.bytes >= tuning.pieceBytes) return paceAndFlush();
        return undefined;
      };
      const commit = async () => {
        await drain();
        const at = sourceTime === null ? null : sourceCommitTime(sourceTime);
        await advanceApplied(dst, config.name, formatLsn(persisted), formatLsn(batchEnd), at);
        return { batchEnd, sourceTime: at };
      };
      try {
        let item = first;
        for (;;) {
          if (item.kind === 'message') {
            const m = item.msg;
            if (skipping) {
              // already applied before a restart: nothing of it is written again
            } else if (m.tag === 'insert' || m.tag === 'update' || m.tag === 'delete') {
              const rel = relationOf(m.relationOid);
              if (rel.kind === 'table' && fenceAt !== null && txn.commitLsn > fenceAt) throw writeAfterFence(rel.table.display, txn.commitLsn, fenceAt);
              if (rel.kind === 'table' && rel.table.keyless) {
                if (copyHolds(rel.table, txn)) keyless.skipped++;
                else {
                  if (!replicaRole && piece.size) await flush();
                  changedTables.add(rel.table);
                  keyless.add(
                    keylessChange(rel.table, m, txn, (tuple) => reorder(rel, tuple)),
                    item.bytes,
                  );
                  const waiting = added();
                  if (waiting) await waiting;
                }
              } else if (rel.kind === 'table') {
                if (!replicaRole && keyless.size) await flush();
                piece.add(rel.table, rowChange(rel, m), item.bytes);
                changedTables.add(rel.table);
                const waiting = added();
                if (waiting) await waiting;
              } else if (rel.kind === 'ddl') {
                if (m.tag === 'insert' && m.new[rel.columns.migration] === config.name) {
                  await drain();
                  await ddl.replay(ddlEntry(rel.columns, m.new), txn.commitLsn);
                  // The tables it changed are mapped again from the Relation messages that follow.
                  for (const [oid, r] of relations)
                    if (r.kind === 'table' && !tables.has(JSON.stringify([r.table.source.schema, r.table.source.table]))) relations.delete(oid);
                  for (const [oid, r] of relations)
                    if (r.kind === 'table' && tables.get(JSON.stringify([r.table.source.schema, r.table.source.table])) !== r.table) relations.delete(oid);
                  ddlSeen = true;
                  changes++;
                }
              }
            } else if (m.tag === 'truncate') {
              await drain();
              // A table without key whose copy saw this TRUNCATE holds its effect (and the rows inserted after it) already.
              const ts = m.relationOids.map(relationOf).flatMap((r) => (r.kind === 'table' && !(r.table.keyless && copyHolds(r.table, txn)) ? [r.table] : []));
              if (fenceAt !== null && txn.commitLsn > fenceAt && ts.length) throw writeAfterFence(ts[0].display, txn.commitLsn, fenceAt);
              for (const t of ts) changedTables.add(t);
              await applyTruncate(
                { dst, src: srcClient, ...(touched && { touched: { recorder: touched, lsn: txn.commitLsn } }) },
                stats,
                ts,
                m.restartIdentity,
                m.cascade,
              );
              changes++;
            }
            if (m.tag === 'commit') {
              inTxn = false;
              if (!skipping) {
                transactions++;
                received = maxLsn(received, m.endLsn);
                batchEnd = maxLsn(batchEnd, m.endLsn);
                // The destination now holds the source as of this commit (source clock; rendered at the batch's commit).
                sourceTime = txnCommitTime;
              }
              skipping = false;
            }
          }
          // At a source commit boundary: commit when the stream has nothing more
          // right now (lowest lag), or the batch is old or large enough, or the round is cancelled.
          if (!inTxn && batchEnd > position) {
            const reached = stopAt !== null && batchEnd >= stopAt;
            if (
              reached ||
              ddlSeen ||
              cancelledAt !== null ||
              s.pending() === 0 ||
              Date.now() - openedAt >= tuning.batchMs ||
              batchChanges >= tuning.batchChanges
            ) {
              return commit();
            }
          }
          // With a piece in flight, let the event loop run now and then: its next statement is sent
          // only once the destination's answer to the previous one is read.
          if (inflight && ++sinceYield >= 64) {
            sinceYield = 0;
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
          let following = takeQueued() ?? (await next());
          if (!following) {
            // Cancelled: commit at this source commit, or at the one of the transaction in flight if it arrives within the grace.
            if (!inTxn && batchEnd > position) return commit();
            const left = cancelledAt! + tuning.cancelGraceMs - Date.now();
            if (inTxn && left > 0) following = await s.next(failing.signal, left);
            if (!following) throw rolledBack;
          }
          item = following;
          track(item);
        }
      } catch (e) {
        // Nothing may reach the destination after this transaction rolls back: the piece in flight ends first.
        await quiesce();
        throw e;
      }
    };

    const deadline = input.maxSeconds ? started + input.maxSeconds * 1000 : null;
    for (;;) {
      if (stopAt !== null && position >= stopAt) break;
      if (cancelledAt !== null || (deadline !== null && Date.now() >= deadline)) {
        if (position > persisted) await persistIdle();
        break;
      }
      // A position confirmed but not yet recorded is recorded once the stream pauses for a second.
      const item = position > persisted || deadline !== null ? await next(1000) : await next();
      if (!item) {
        if (cancelledAt === null) await persistIdle();
        continue;
      }
      track(item);
      if (needsDestination(item)) {
        // Counted as applied only once committed: a batch cancelled mid-transaction rolls back.
        const before = { transactions, changes, fallbacks: stats.fallbacks, partialImages: stats.partialImages, sourceReads: stats.sourceReads };
        const ddlBefore = { replayed: ddl.replayed, events: ddl.events.length };
        let done;
        try {
          done = await fenced(dst, config.name, runToken, () => batch(item));
        } catch (e) {
          if (e !== rolledBack && !(e instanceof DdlBlocked)) throw e;
          ({ transactions, changes } = before);
          Object.assign(stats, { fallbacks: before.fallbacks, partialImages: before.partialImages, sourceReads: before.sourceReads });
          // A DDL that cannot be replayed: the round ends before its source transaction, which the next round meets again unless skipped.
          ddl.rollBack(ddlBefore, e instanceof DdlBlocked ? e.event : null);
          if (e instanceof DdlBlocked) ddlBlocked = e.event;
          break;
        }
        persisted = position = done.batchEnd;
        if (done.sourceTime) durableSourceTime = done.sourceTime;
        s.confirm(position);
        continue;
      }
      if (item.kind === 'keepalive') {
        // Everything committed before the walsender's position has been received, and nothing is pending.
        if (!inTxn) await advanceIdle(item.walEnd);
      } else if (item.kind === 'message' && item.msg.tag === 'commit') {
        const end = item.msg.endLsn;
        received = maxLsn(received, end);
        if (!skipping) transactions++;
        inTxn = false;
        skipping = false;
        // Nothing of it to apply (or applied before): the position moves past it.
        await advanceIdle(end);
      }
    }
    // The lag as of now, for the caller (the workflow records it between rounds).
    await beat();
    return {
      ...standing(),
      partialImages: stats.partialImages,
      sourceReads: stats.sourceReads,
      keylessSkipped: keyless.skipped,
      statements: stats.statements,
      stream: { ...s.stats },
      ...(touched && { touched: { ...touched.counts } }),
      changedTables: changedTableList(changedTables),
      seconds: (Date.now() - started) / 1000,
      ddl: { replayed: ddl.replayed, events: ddl.events, blocked: ddlBlocked },
    };
  } catch (e) {
    // A background failure (or, for a failure while cancelled, the cancellation) is the reason, not the interrupted wait.
    if (failing.signal.aborted) throw failing.signal.reason;
    if (signal.aborted) throw signal.reason;
    throw e;
  } finally {
    clearTimeout(hardTimer);
    for (const t of timers) clearInterval(t);
    await stream?.close();
    await dst.end().catch(() => undefined);
    await src?.end().catch(() => undefined);
  }
}

/** The changed tables by key (null past the limit: too many to list). */
function changedTableList(tables: Set<ApplyTable>): { key: string; display: string }[] | null {
  const byKey = new Map<string, string>();
  for (const t of tables) byKey.set(touchedTableKey(t), t.display);
  return byKey.size > CHANGED_TABLES_LIMIT ? null : [...byKey].map(([key, display]) => ({ key, display }));
}

/** pgoutput's commit timestamp (µs since 2000-01-01 UTC, source clock) as ISO 8601. */
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
export const sourceCommitTime = (us: bigint): string => new Date(PG_EPOCH_MS + Number(us / 1000n)).toISOString();

/** A change committed on the source after the cutover's fence: the fence was bypassed, the destination would miss it. */
function writeAfterFence(table: string, commit: Lsn, fence: Lsn): Error {
  return ApplicationFailure.nonRetryable(
    `a change of ${table} committed on the source at ${formatLsn(commit)}, after the cutover's fence at ${formatLsn(fence)}: ` +
      `a session bypassed the read-only fence (it set default_transaction_read_only = off or BEGIN READ WRITE); the destination does not have this change`,
    'WriteAfterFence',
  );
}

/** Start streaming; a slot still held by a stale walsender of an earlier attempt is taken over. */
async function openStream(
  config: Config,
  src: Client,
  slot: string,
  publication: string,
  from: Lsn,
  signal: AbortSignal,
  opts: StreamOptions,
): Promise<ChangeStream> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const exists = await src.query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (!exists.rowCount) throw new Error(`replication slot ${slot} does not exist on the source (released, or prepareSource has not run)`);
    const pid = exists.rows[0].pid;
    if (pid) {
      // Only ever our own migration's walsender (the slot is this migration's).
      await src.query('SELECT pg_terminate_backend($1)', [pid]).catch(() => undefined);
    }
    const stream = new ChangeStream(clientConfig(config, 'source', applicationName('capture', config.name)), slot, publication, from, opts);
    try {
      await stream.start();
      return stream;
    } catch (e) {
      await stream.close();
      const code = (e as { code?: string }).code ?? '';
      // Authentication and network failures name the config field to fix (and never carry the password).
      if (code.startsWith('28') || code === '3D000' || isConnectionError(e)) throw describeConnectError('source', config.source, e);
      if (code !== '55006' || Date.now() > deadline || signal.aborted) throw e;
      await sleep(250, signal);
    }
  }
}
