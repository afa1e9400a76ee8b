// Copy one chunk: a short REPEATABLE READ snapshot on the source (taken after
// the slot exists, so the change stream covers everything after it), COPY streamed to the destination with
// backpressure, metered for the throttle, and committed in ONE fenced
// destination transaction together with the chunk's "done" mark. A retry, on
// any worker, therefore finds either nothing or the whole chunk: no duplicate,
// no gap. Two attempts racing on the same chunk serialise on its row lock.
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { hostname } from 'node:os';
import { Context } from '@temporalio/activity';
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { copyInFramed, copyOutFramed, type CopyOutCounts } from '../../lib/io/copy-relay';
import { CopyStreamFingerprint, fingerprintText } from '../../lib/copy-fingerprint';
import { ident } from '../../lib/ident';
import type { ChunkBeat, Throttle } from '../../lib/migration-state';
import { withSessions } from '../../lib/io/session';
import { RateLimiter } from '../../lib/throttle';
import { assertNotFenced } from '../control';
import { heartbeat } from '../heartbeat';
import { about } from '../retry';
import type { LiveThrottle } from '../../workflows/definitions';
import { queryLiveThrottle } from '../live-throttle';
import { type CopyTable, sourceName, targetName } from './tables';

export interface ChunkInput {
  config: Config;
  runToken: string;
  table: string;
  chunk: number;
  /**
   * The workflow's throttle and how many copies share it when it scheduled this
   * chunk, so the copy starts at the right rate without asking; running copies
   * refresh it from the workflow every ~2 s.
   */
  live?: LiveThrottle;
}

export interface ChunkResult {
  rows: number;
  bytes: number;
  ms: number;
  /** True when an earlier attempt had already copied it. */
  skipped: boolean;
}

/** The live throttle share of one copy, refreshed from the workflow. */
export interface ThrottleSource {
  current(): Promise<LiveThrottle | null>;
}

function ratesFor(t: Throttle, share: number) {
  return {
    rowsPerSecond: t.fullRowsPerSecond ? t.fullRowsPerSecond / share : null,
    bytesPerSecond: t.fullMbPerSecond ? (t.fullMbPerSecond * 1024 * 1024) / share : null,
  };
}

/** Throttle share via the workflow's live-throttle query, from inside the activity. */
const workflowThrottle = (): ThrottleSource => ({ current: queryLiveThrottle });

/** Paces the relay and reports progress; rows and bytes come from the relay's message count. */
function meter(counts: CopyOutCounts, limiter: RateLimiter, progress: { rows: number; bytes: number }, refresh: () => Promise<void>, beat: () => void) {
  let lastBeat = 0;
  return new Transform({
    // eslint-disable-next-line @typescript-eslint/no-misused-promises -- the body catches every error and hands it to done()
    async transform(buf: Buffer, _enc, done) {
      try {
        // One CopyData message a row (binary adds its trailer: one row too many until the end, on purpose harmless).
        const rows = counts.messages - progress.rows;
        const bytes = counts.payloadBytes - progress.bytes;
        progress.rows = counts.messages;
        progress.bytes = counts.payloadBytes;
        await limiter.take(rows, bytes);
        const now = Date.now();
        if (now - lastBeat > 1000) {
          lastBeat = now;
          beat();
          await refresh();
        }
        done(null, buf);
      } catch (e) {
        done(e as Error);
      }
    },
  });
}

/**
 * Fingerprints the rows as they pass (lib/copy-fingerprint.ts), for full data
 * verification: the source side of its comparison is then read only once, by
 * the copy itself (activities/verify-fingerprint.ts). Null when verification is off.
 */
function fingerprinting(config: Config, binary: boolean): { fp: CopyStreamFingerprint | null; stream: Transform | null } {
  if (!config.verification.full) return { fp: null, stream: null };
  const fp = new CopyStreamFingerprint(binary ? 'binary' : 'text');
  return {
    fp,
    stream: new Transform({
      transform(buf: Buffer, _enc, done) {
        fp.feed(buf);
        done(null, buf);
      },
    }),
  };
}

/**
 * The chunk's done mark, in the transaction that loaded it: its counts, the
 * source snapshot it was read at and, with verification on, the fingerprint
 * of the rows as the source sent them.
 */
async function markChunkDone(
  dst: Client,
  at: { migration: string; table: string; chunk: number },
  done: { rows: number; bytes: number; snapshot: string; minLsn: string | null; maxLsn: string | null; fingerprint: CopyStreamFingerprint | null },
): Promise<void> {
  const fp = done.fingerprint?.result();
  await dst.query(
    `UPDATE pgshift.chunks SET state = 'done', rows = $4, bytes = $5, copied_at = now(), copied_by = $6, attempts = attempts + 1,
            snapshot = $7, snapshot_min_lsn = $8::pg_lsn, snapshot_max_lsn = $9::pg_lsn, fingerprint = $10
    WHERE migration = $1 AND table_key = $2 AND chunk = $3`,
    [
      at.migration,
      at.table,
      at.chunk,
      done.rows,
      done.bytes,
      `${hostname()}:${process.pid}`,
      done.snapshot,
      done.minLsn,
      done.maxLsn,
      fp ? fingerprintText(fp) : null,
    ],
  );
}

/**
 * TOAST compression dominates loading wide values (pglz costs several times
 * lz4's CPU). Servers built without lz4 (or before 14) keep their default.
 */
async function useLz4(dst: Client): Promise<void> {
  try {
    await dst.query('SET default_toast_compression = lz4');
  } catch {
    // invalid value: no lz4 in this server; its own default stays
  }
}

/**
 * Truncate the target of a whole-table chunk inside the chunk's transaction, so that
 * its COPY can load with FREEZE: rows land frozen on pages marked all-visible (14
 * and later), so the key builds, FK validations and verification that read the
 * table next set no hint bits, an FK's validation reads two indexes instead of
 * hashing the referenced table (it cannot use the visibility map otherwise: the
 * other lanes' COPYs hold the destination's xmin horizon back, so even a VACUUM
 * marks nothing), and the destination's first freezing vacuum does not rewrite
 * every page. Only when truncating changes nothing: the table is empty (checked
 * under the ACCESS EXCLUSIVE lock, so nothing lands between the check and the
 * truncate), no FK references it and it has no triggers. The lock is asked for
 * NOWAIT: when any other session holds one on the table (a query, a vacuum), or
 * the TRUNCATE is refused (privilege), the attempt is undone and the chunk
 * loads without FREEZE at once — the load never waits for its optimisation.
 * The lock is held until the chunk commits, as the COPY's own rows are
 * invisible until then anyway.
 */
async function truncatedForFreeze(dst: Client, target: string): Promise<boolean> {
  await dst.query('SAVEPOINT pgshift_freeze');
  try {
    await dst.query(`LOCK TABLE ONLY ${target} IN ACCESS EXCLUSIVE MODE NOWAIT`);
    const r = await dst.query<{ ok: boolean }>(
      `SELECT NOT EXISTS (SELECT 1 FROM ONLY ${target})
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE confrelid = $1::regclass AND contype = 'f')
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1::regclass) AS ok`,
      [target],
    );
    if (!r.rows[0].ok) throw new Error('not empty, referenced or with triggers');
    await dst.query(`TRUNCATE ONLY ${target}`);
    await dst.query('RELEASE SAVEPOINT pgshift_freeze');
    return true;
  } catch {
    await dst.query('ROLLBACK TO SAVEPOINT pgshift_freeze');
    await dst.query('RELEASE SAVEPOINT pgshift_freeze');
    return false;
  }
}

async function hasUniqueIndex(dst: Client, t: CopyTable): Promise<boolean> {
  const r = await dst.query('SELECT 1 FROM pg_index WHERE indrelid = $1::regclass AND indisunique LIMIT 1', [targetName(t)]);
  return (r.rowCount ?? 0) > 0;
}

export async function copyChunk(input: ChunkInput, throttleSource: ThrottleSource = workflowThrottle()): Promise<ChunkResult> {
  const { config, runToken, table, chunk } = input;
  const started = Date.now();
  // Both sessions at once (connection set-up is a visible share of a small chunk), with
  // the data settings that make text COPY exact and identical on both ends. On failure
  // they may be mid-COPY, where a ROLLBACK would queue behind the stream: closing them
  // aborts both transactions instead.
  return withSessions(config, 'copy', async (src, dst) => {
    // What a failure is about: the table (its key until its spec is read) and the chunk.
    let display = table;
    try {
      if (config.fullLoad.toastCompression === 'lz4') await useLz4(dst);
      await dst.query('BEGIN');
      await assertNotFenced(dst, config.name, runToken);
      const r = await dst.query<{ predicate: string; state: string; rows: string | null; bytes: string | null; spec: CopyTable }>(
        `SELECT c.predicate, c.state, c.rows, c.bytes, t.spec
         FROM pgshift.chunks c JOIN pgshift.copy_tables t USING (migration, table_key)
        WHERE c.migration = $1 AND c.table_key = $2 AND c.chunk = $3
        FOR UPDATE OF c`,
        [config.name, table, chunk],
      );
      const row = r.rows[0];
      if (!row) throw new Error(`chunk ${chunk} of ${table} is not in the plan (pgshift.chunks); was the destination control schema dropped?`);
      if (row.state === 'done') {
        await dst.query('COMMIT');
        return { rows: Number(row.rows), bytes: Number(row.bytes), ms: Date.now() - started, skipped: true };
      }
      const t = row.spec;
      display = t.display;

      // The snapshot is taken by the transaction's first statement, between the two WAL
      // insert positions read here; recorded with the done mark, they prove the slot is
      // older than the snapshot (SPEC §3.1) and tell the apply which source transactions the
      // copy already holds (lib/capture/snapshot.ts). A standby has no insert position.
      const insertLsn = `CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn()::text END`;
      const before = (await src.query<{ lsn: string | null }>(`SELECT ${insertLsn} AS lsn`)).rows[0].lsn;
      await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const snap = (await src.query<{ snapshot: string; lsn: string | null }>(`SELECT txid_current_snapshot()::text AS snapshot, ${insertLsn} AS lsn`)).rows[0];

      const format = t.binary ? 'FORMAT binary' : null;
      const where = [row.predicate, t.filter ? `(${t.filter})` : null].filter(Boolean).join(' AND ');
      const cols = t.columns.map((c) => ident(c.name)).join(', ');
      const into = `${targetName(t)} (${t.targetColumns.map(ident).join(', ')})`;

      const limiter = new RateLimiter(
        input.live ? ratesFor(input.live.throttle, Math.max(1, input.live.activeCopies)) : ratesFor(config.throttle, config.parallelism.tables),
      );
      let lastRefresh = input.live ? Date.now() : 0;
      const refresh = async () => {
        if (Date.now() - lastRefresh < 2000) return;
        lastRefresh = Date.now();
        const live = await throttleSource.current();
        if (live) limiter.setRates(ratesFor(live.throttle, Math.max(1, live.activeCopies)));
      };
      await refresh();
      const progress = { rows: 0, bytes: 0 };

      const cancelled = (() => {
        try {
          return Context.current().cancelled;
        } catch {
          return new Promise<never>(() => undefined);
        }
      })();
      // existingTargetTables: ignore keeps rows already on the destination: load
      // into a scratch table, then insert what does not collide with a key.
      const keepExisting = config.existingTargetTables === 'ignore' && (await hasUniqueIndex(dst, t));
      if (keepExisting) {
        await dst.query(`CREATE TEMP TABLE pgshift_chunk ON COMMIT DROP AS SELECT ${t.targetColumns.map(ident).join(', ')} FROM ${targetName(t)} WITH NO DATA`);
      }
      // A whole table (one chunk, no filter) is read by COPY itself, without the query layer.
      // Either way only the table's own rows: inheritance children are copied as tables of their own.
      const whole = row.predicate === 'true' && !t.filter;
      const from = whole ? `${sourceName(t)} (${cols})` : `(SELECT ${cols} FROM ONLY ${sourceName(t)} WHERE ${where})`;
      const freeze = whole && !keepExisting && (await truncatedForFreeze(dst, targetName(t)));
      const options = (...o: (string | null)[]) => (o.some(Boolean) ? `(${o.filter(Boolean).join(', ')})` : '');
      const out = src.query(copyOutFramed(`COPY ${from} TO STDOUT ${options(format)}`));
      const sink = dst.query(copyInFramed(`COPY ${keepExisting ? 'pg_temp.pgshift_chunk' : into} FROM STDIN ${options(format, freeze ? 'FREEZE' : null)}`));
      const fingerprint = fingerprinting(config, t.binary);
      const metered = meter(out, limiter, progress, refresh, () => heartbeat({ table, chunk, rows: progress.rows, bytes: progress.bytes } satisfies ChunkBeat));
      await Promise.race([
        // The beat names the chunk, so `pgshift status` and the UI's pending activities show its live progress.
        fingerprint.stream ? pipeline(out, metered, fingerprint.stream, sink) : pipeline(out, metered, sink),
        cancelled.catch((e) => {
          out.destroy(e);
          sink.destroy(e);
          throw e;
        }),
      ]);
      // The destination's own count of what it loaded (the relay counted messages).
      progress.rows = sink.rowCount;
      if (keepExisting) {
        const cols = t.targetColumns.map(ident).join(', ');
        await dst.query(`INSERT INTO ${into} SELECT ${cols} FROM pg_temp.pgshift_chunk ON CONFLICT DO NOTHING`);
      }
      await markChunkDone(
        dst,
        { migration: config.name, table, chunk },
        { rows: progress.rows, bytes: progress.bytes, snapshot: snap.snapshot, minLsn: before, maxLsn: snap.lsn, fingerprint: fingerprint.fp },
      );
      await dst.query('COMMIT');
      await src.query('COMMIT');
      return { rows: progress.rows, bytes: progress.bytes, ms: Date.now() - started, skipped: false };
    } catch (err) {
      throw about(`copy of ${display} chunk ${chunk + 1}`, err);
    }
  });
}
