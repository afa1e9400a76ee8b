// Full-load plan: every selected table split into chunks by key range
// (integer arithmetic for one integer key, sampled boundaries for any other
// key, page ranges for a table without key — one chunk when its changes are
// captured, see lib/selection.ts copiedInOneChunk), stored on the destination in
// pgshift.chunks so any worker can copy any chunk and a crash loses nothing.
// The workflow reads it back a page at a time (the destination, not the
// workflow state, knows which chunk of which table is done).
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { displayName, ident, literal } from '../../lib/ident';
import { withSessions } from '../../lib/io/session';
import { copiedInOneChunk } from '../../lib/selection';
import { STATUS_TABLES, type FullLoadPage, type FullLoadTotals } from '../../lib/full-load-progress';
import { ensureControlSchema, fenced } from '../control';
import { heartbeat } from '../heartbeat';
import { type CopyTable, readCopyTables, sourceName } from './tables';

export async function ensureChunkTable(dst: Client): Promise<void> {
  await ensureControlSchema(dst);
  await dst.query(`
    CREATE TABLE IF NOT EXISTS pgshift.chunks (
      migration  text NOT NULL,
      table_key  text NOT NULL,
      chunk      int  NOT NULL,
      predicate  text NOT NULL,
      -- key bounds as text (null = unbounded); verification renders them with destination names
      lower_key  text[],
      upper_key  text[],
      state      text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
      rows       bigint,
      bytes      bigint,
      attempts   int NOT NULL DEFAULT 0,
      copied_at  timestamptz,
      copied_by  text,
      -- the source snapshot the chunk was copied at (txid_current_snapshot() text) and the
      -- source's WAL insert position just before / just after it was taken (lib/capture/snapshot.ts)
      snapshot          text,
      snapshot_min_lsn  pg_lsn,
      snapshot_max_lsn  pg_lsn,
      -- with full verification on: the copied rows' fingerprint as the source sent them (lib/copy-fingerprint.ts)
      fingerprint       text,
      PRIMARY KEY (migration, table_key, chunk)
    );
    -- How to copy each table (columns, key, format), so a chunk needs one read.
    CREATE TABLE IF NOT EXISTS pgshift.copy_tables (
      migration  text NOT NULL,
      table_key  text NOT NULL,
      spec       jsonb NOT NULL,
      PRIMARY KEY (migration, table_key)
    );
    -- Marks a complete plan: every selected table is in copy_tables and chunks.
    CREATE TABLE IF NOT EXISTS pgshift.copy_plans (
      migration  text PRIMARY KEY,
      planned_at timestamptz NOT NULL DEFAULT now()
    )`);
  // Control tables made by an earlier version lack the snapshot and fingerprint columns. Only then
  // altered: the lock it takes would wait for every chunk copy in flight.
  const have = await dst.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 'pgshift.chunks'::regclass AND attname IN ('snapshot_max_lsn', 'fingerprint') AND NOT attisdropped`,
  );
  if (have.rows[0].n < 2) {
    await dst.query(
      `ALTER TABLE pgshift.chunks ADD COLUMN IF NOT EXISTS snapshot text, ADD COLUMN IF NOT EXISTS snapshot_min_lsn pg_lsn,
         ADD COLUMN IF NOT EXISTS snapshot_max_lsn pg_lsn, ADD COLUMN IF NOT EXISTS fingerprint text`,
    );
  }
}

const cols = (names: string[]) => names.map(ident).join(', ');
const row = (names: string[]) => (names.length === 1 ? ident(names[0]) : `(${cols(names)})`);
const lit = (values: string[], types: string[]) => {
  const parts = values.map((v, i) => `${literal(v)}::${types[i]}`);
  return parts.length === 1 ? parts[0] : `(${parts.join(', ')})`;
};

/** A half-open key range [lower, upper); null is unbounded. */
export interface KeyRange {
  lower: string[] | null;
  upper: string[] | null;
}

/** Consecutive ranges from sorted boundaries, covering every key exactly once. */
export function rangesFromBounds(bounds: string[][]): KeyRange[] {
  if (!bounds.length) return [{ lower: null, upper: null }];
  return [null, ...bounds].map((lower, i) => ({ lower, upper: bounds[i] ?? null }));
}

/** SQL condition for a key range over the given key columns (source or destination names). */
export function rangePredicate(keyCols: string[], types: string[], r: KeyRange): string {
  const k = row(keyCols);
  const parts = [r.lower ? `${k} >= ${lit(r.lower, types)}` : null, r.upper ? `${k} < ${lit(r.upper, types)}` : null].filter(Boolean);
  return parts.length ? parts.join(' AND ') : 'true';
}

async function chunkBounds(src: Client, t: CopyTable, chunks: number): Promise<string[][]> {
  if (chunks <= 1) return [];
  if (!t.chunkKey) return [];
  const k = t.chunkKey;
  if (k.integer) {
    const c = ident(k.columns[0]);
    const r = await src.query<{ lo: string | null; hi: string | null }>(`SELECT min(${c})::text AS lo, max(${c})::text AS hi FROM ONLY ${sourceName(t)}`);
    if (r.rows[0].lo === null) return [];
    const lo = BigInt(r.rows[0].lo);
    const hi = BigInt(r.rows[0].hi!);
    const span = hi - lo + 1n;
    const n = BigInt(chunks);
    const out: string[][] = [];
    for (let i = 1n; i < n; i++) {
      const b = lo + (span * i) / n;
      if (!out.length || out[out.length - 1][0] !== b.toString()) out.push([b.toString()]);
    }
    return out;
  }
  // Any other key: boundaries at even quantiles of a sample, in the key's own ordering.
  const pct = Math.min(100, Math.max(0.01, (chunks * 2000 * 100) / Math.max(1, t.estimatedRows)));
  const sample = await src.query<{ k: string[] }>(
    `SELECT ARRAY[${k.columns.map((c) => `${ident(c)}::text`).join(', ')}] AS k
       FROM ONLY ${sourceName(t)} TABLESAMPLE SYSTEM (${pct}) ORDER BY ${cols(k.columns)}`,
  );
  const out: string[][] = [];
  for (let i = 1; i < chunks; i++) {
    const s = sample.rows[Math.floor((i * sample.rows.length) / chunks)];
    if (s && (!out.length || JSON.stringify(out[out.length - 1]) !== JSON.stringify(s.k))) out.push(s.k);
  }
  return out;
}

interface PlannedChunk {
  predicate: string;
  range: KeyRange | null;
}

/** Page ranges for a table without any key (correct only while nobody writes: full-only mode; see copiedInOneChunk). */
async function pageChunks(src: Client, t: CopyTable, chunks: number): Promise<PlannedChunk[]> {
  const r = await src.query<{ pages: string }>(`SELECT pg_relation_size($1::regclass) / current_setting('block_size')::int AS pages`, [sourceName(t)]);
  const pages = Number(r.rows[0].pages);
  if (chunks <= 1 || pages < chunks) return [{ predicate: 'true', range: null }];
  return Array.from({ length: chunks }, (_, i) => {
    const lo = Math.floor((pages * i) / chunks);
    const hi = Math.floor((pages * (i + 1)) / chunks);
    const conds = [i > 0 ? `ctid >= '(${lo},0)'::tid` : null, i < chunks - 1 ? `ctid < '(${hi},0)'::tid` : null].filter(Boolean);
    return { predicate: conds.join(' AND '), range: null };
  });
}

/** A table is split to keep the lanes busy only into ranges of at least this size: below it, a range's fixed costs outweigh the parallelism. */
const BALANCE_MIN_BYTES = 64 << 20;

/** What the split of one table depends on besides its own size. */
export interface ChunkRules {
  /** Largest chunk: one source transaction, the unit of retry (fullLoad.chunkMb). */
  maxChunkBytes: number;
  /** Every selected table's bytes over the lanes (parallelism.tables, the chunks copied at the same time). */
  laneShareBytes: number;
}

/** What a table's split depends on of its own (CopyTable has it). */
type Sized = Pick<CopyTable, 'bytes'>;

/** The split rules of a load of `tables` on `lanes` parallel copies. */
export function chunkRules(tables: Sized[], maxChunkBytes: number, lanes: number): ChunkRules {
  return { maxChunkBytes, laneShareBytes: tables.reduce((sum, t) => sum + t.bytes, 0) / lanes };
}

/**
 * How many chunks a table is copied in. A table is read whole by one COPY
 * when it can be: a range is read through a query with its key predicate
 * (~a third more source CPU per row); ranges of one table load side by side
 * into the same heap (two sessions loading halves of a narrow table spend
 * 1.1x the destination CPU of one loading it all, of a table whose values
 * are stored out of line 1.35-1.45x: they all insert at the right edge of
 * its TOAST index); and only a whole table loads with FREEZE (chunk.ts
 * truncatedForFreeze: its key builds and FK validations then read frozen,
 * all-visible pages). So a table is split only
 *  1. into chunks of at most `maxChunkBytes`;
 *  2. when it is larger than one lane's share of the load's bytes, into
 *     ranges of about half that share (never below 64 MB), so that it does
 *     not end the load alone on one lane while the others are idle (halves:
 *     the lanes, which start on other tables first, can even out at the end).
 *     That pays even for out-of-line values: the bench's 556 MB of documents
 *     whole end the load 3.3 s after the other lane with verification on.
 * Splitting a table across the lanes because it holds most of the rows (its
 * copy would end sooner, and its key builds start beside the other copies)
 * was measured and dropped: the builds and FK validations of a table loaded
 * without FREEZE cost more than the earlier start gains.
 */
export function chunkCount(t: Sized, rules: ChunkRules): number {
  const bySize = Math.ceil(t.bytes / rules.maxChunkBytes);
  const balances = t.bytes > rules.laneShareBytes && t.bytes >= 2 * BALANCE_MIN_BYTES;
  const byBytes = balances ? Math.min(Math.ceil((2 * t.bytes) / rules.laneShareBytes), Math.floor(t.bytes / BALANCE_MIN_BYTES)) : 1;
  return Math.min(1000, Math.max(1, bySize, byBytes));
}

export async function planTableChunks(src: Client, t: CopyTable, mode: Pick<Config['mode'], 'incremental'>, rules: ChunkRules): Promise<PlannedChunk[]> {
  const chunks = chunkCount(t, rules);
  const key = t.chunkKey;
  // A keyless table whose changes are applied: one chunk, one snapshot (lib/selection.ts).
  if (copiedInOneChunk(key, mode)) return [{ predicate: 'true', range: null }];
  if (!key) return pageChunks(src, t, chunks);
  return rangesFromBounds(await chunkBounds(src, t, chunks)).map((range) => ({
    predicate: rangePredicate(key.columns, key.types, range),
    range,
  }));
}

export interface FullLoadPageRequest {
  config: Config;
  runToken: string;
  /** Copy-order position after which the page starts (null: from the first table). */
  after: number | null;
  /** Whole tables are added until the page holds this many pending chunks. */
  pageChunks: number;
  /** Also list the copied tables whose keys and indexes are not built yet. */
  backlog: boolean;
}

/** Copied tables waiting for their keys, listed at most (the keys and post-data phases build any others). */
const BACKLOG_LIMIT = 1000;

/**
 * Plan every selected table once (tables planned by an earlier attempt are
 * kept as they are; a mark records that the plan is complete, after which the
 * source is not read again), then return one page of it from the destination:
 * totals, the largest tables, and whole tables with chunks still to copy, in
 * copy order — the most index-build work first, then the largest.
 */
export async function planFullLoad(input: FullLoadPageRequest): Promise<FullLoadPage> {
  const { config, runToken } = input;
  // The data settings on the source: key bounds are read as text here and parsed back as literals by the chunks.
  return withSessions(config, 'plan', async (src, dst) => {
    await ensureChunkTable(dst);
    const complete = await dst.query('SELECT 1 FROM pgshift.copy_plans WHERE migration = $1', [config.name]);
    if (!complete.rowCount) await planTables(src, dst, config, runToken);
    return readPage(dst, input);
  });
}

async function planTables(src: Client, dst: Client, config: Config, runToken: string): Promise<void> {
  {
    const tables = await readCopyTables(src, config);
    const existing = await dst.query<{ table_key: string }>('SELECT DISTINCT table_key FROM pgshift.chunks WHERE migration = $1', [config.name]);
    const known = new Set(existing.rows.map((r) => r.table_key));
    const rules = chunkRules(tables, config.fullLoad.chunkMb * 1024 * 1024, config.parallelism.tables);
    for (const [i, t] of tables.entries()) {
      if (known.has(t.key)) continue;
      heartbeat(`planning ${t.display} (${i + 1}/${tables.length})`);
      const preds = await planTableChunks(src, t, config.mode, rules);
      await fenced(dst, config.name, runToken, async () => {
        await dst.query(`INSERT INTO pgshift.copy_tables (migration, table_key, spec) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [
          config.name,
          t.key,
          JSON.stringify(t),
        ]);
        await dst.query(
          `INSERT INTO pgshift.chunks (migration, table_key, chunk, predicate, lower_key, upper_key)
           SELECT $1, $2, ord - 1, c->>'predicate',
                  CASE WHEN jsonb_typeof(c->'range'->'lower') = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(c->'range'->'lower')) END,
                  CASE WHEN jsonb_typeof(c->'range'->'upper') = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(c->'range'->'upper')) END
             FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS u(c, ord)
           ON CONFLICT DO NOTHING`,
          [config.name, t.key, JSON.stringify(preds)],
        );
      });
    }
    await fenced(dst, config.name, runToken, () => dst.query('INSERT INTO pgshift.copy_plans (migration) VALUES ($1) ON CONFLICT DO NOTHING', [config.name]));
  }
}

/** Each planned table with its copy-order position and its chunks' progress. */
const TABLES_IN_ORDER = `
  WITH t AS (
    SELECT table_key, spec,
           row_number() OVER (ORDER BY (spec->>'estimatedRows')::numeric * (spec->>'indexes')::numeric DESC, (spec->>'bytes')::numeric DESC, table_key)::int AS pos
      FROM pgshift.copy_tables WHERE migration = $1)
  SELECT t.table_key AS key, t.pos, t.spec->>'display' AS display, t.spec->'target' AS target,
         (t.spec->>'estimatedRows')::float8 AS "estimatedRows", (t.spec->>'bytes')::float8 AS "estimatedBytes",
         count(*)::int AS chunks, (count(*) FILTER (WHERE c.state = 'done'))::int AS "chunksDone",
         coalesce(sum(c.rows) FILTER (WHERE c.state = 'done'), 0)::float8 AS rows,
         coalesce(sum(c.bytes) FILTER (WHERE c.state = 'done'), 0)::float8 AS bytes,
         coalesce(array_agg(c.chunk ORDER BY c.chunk) FILTER (WHERE c.state = 'pending'), '{}') AS pending
    FROM t JOIN pgshift.chunks c ON c.migration = $1 AND c.table_key = t.table_key`;

interface OrderedTable {
  key: string;
  pos: number;
  display: string;
  target: { schema: string; table: string };
  estimatedRows: number;
  estimatedBytes: number;
  chunks: number;
  chunksDone: number;
  rows: number;
  bytes: number;
  pending: number[];
}

async function readPage(dst: Client, input: FullLoadPageRequest): Promise<FullLoadPage> {
  const { config } = input;
  const totals = await dst.query<FullLoadTotals>(
    `SELECT count(*)::int AS tables, (count(*) FILTER (WHERE done = chunks))::int AS "tablesDone",
            coalesce(sum(chunks), 0)::int AS chunks, coalesce(sum(done), 0)::int AS "chunksDone",
            coalesce(sum(rows), 0)::float8 AS rows, coalesce(sum(bytes), 0)::float8 AS bytes,
            coalesce(sum((SELECT (spec->>'bytes')::float8 FROM pgshift.copy_tables s WHERE s.migration = $1 AND s.table_key = k.table_key)), 0) AS "estimatedBytes"
       FROM (SELECT table_key, count(*) AS chunks, count(*) FILTER (WHERE state = 'done') AS done,
                    sum(rows) FILTER (WHERE state = 'done') AS rows, sum(bytes) FILTER (WHERE state = 'done') AS bytes
               FROM pgshift.chunks WHERE migration = $1 GROUP BY table_key) k`,
    [config.name],
  );
  const largest = await dst.query<OrderedTable>(`${TABLES_IN_ORDER} GROUP BY t.table_key, t.pos, t.spec ORDER BY "estimatedBytes" DESC, t.table_key LIMIT $2`, [
    config.name,
    STATUS_TABLES,
  ]);
  // Whole tables after the cursor with chunks to copy, until the page holds pageChunks chunks.
  const candidates = await dst.query<OrderedTable>(
    `SELECT * FROM (
       SELECT p.*, coalesce(sum(cardinality(pending)) OVER (ORDER BY pos ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
         FROM (${TABLES_IN_ORDER} WHERE t.pos > $2 GROUP BY t.table_key, t.pos, t.spec) p
        WHERE cardinality(pending) > 0) q
      WHERE before < $3 ORDER BY pos`,
    [config.name, input.after ?? 0, input.pageChunks],
  );
  const toIndex = input.backlog ? await copiedWithoutKeys(dst, config.name) : [];
  const progress = ({ key, display, estimatedRows, estimatedBytes, chunks, chunksDone, rows, bytes }: OrderedTable) => ({
    key,
    display,
    estimatedRows,
    estimatedBytes,
    chunks,
    chunksDone,
    rows,
    bytes,
  });
  return {
    totals: totals.rows[0],
    largest: largest.rows.map(progress),
    tables: candidates.rows.map((t) => ({ ...progress(t), target: displayName(t.target.schema, t.target.table), pending: t.pending })),
    last: candidates.rows.length ? candidates.rows[candidates.rows.length - 1].pos : null,
    toIndex,
  };
}

/** Destination names of copied tables whose keys and indexes were not built by the full load yet. */
async function copiedWithoutKeys(dst: Client, migration: string): Promise<string[]> {
  const built = await dst.query<{ t: string | null }>(`SELECT to_regclass('pgshift.schema_table_builds')::text AS t`);
  const r = await dst.query<{ target: { schema: string; table: string } }>(
    `SELECT t.spec->'target' AS target FROM pgshift.copy_tables t
      WHERE t.migration = $1
        AND NOT EXISTS (SELECT 1 FROM pgshift.chunks c WHERE c.migration = $1 AND c.table_key = t.table_key AND c.state = 'pending')
      ORDER BY t.table_key LIMIT $2`,
    [migration, BACKLOG_LIMIT * 2],
  );
  const names = r.rows.map((x) => displayName(x.target.schema, x.target.table));
  if (!built.rows[0].t) return names.slice(0, BACKLOG_LIMIT);
  const done = await dst.query<{ on_table: string }>('SELECT on_table FROM pgshift.schema_table_builds WHERE migration = $1 AND on_table = ANY($2)', [
    migration,
    names,
  ]);
  const doneSet = new Set(done.rows.map((x) => x.on_table));
  return names.filter((n) => !doneSet.has(n)).slice(0, BACKLOG_LIMIT);
}
