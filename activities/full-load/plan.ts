// Full-load plan: every selected table split into chunks by key range
// (integer arithmetic for one integer key, sampled boundaries for any other
// key, page ranges for a table without key), stored on the destination in
// pgshift.chunks so any worker can copy any chunk and a crash loses nothing.
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { displayName, ident, literal } from '../../lib/ident';
import { withSessions } from '../../lib/io/session';
import { ensureControlSchema, fenced } from '../control';
import { CopyTable, readCopyTables, sourceName } from './tables';

export interface PlannedTable {
  key: string;
  display: string;
  /** Destination name in display syntax. */
  target: string;
  chunks: number;
  estimatedRows: number;
  bytes: number;
  /** Rows × indexes: the work of building its keys and indexes once it is copied. */
  indexWork: number;
  /** Chunks already copied by an earlier run (resume after continue-as-new or restart). */
  done: number[];
  rowsDone: number;
  bytesDone: number;
}

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
      PRIMARY KEY (migration, table_key, chunk)
    );
    -- How to copy each table (columns, key, format), so a chunk needs one read.
    CREATE TABLE IF NOT EXISTS pgshift.copy_tables (
      migration  text NOT NULL,
      table_key  text NOT NULL,
      spec       jsonb NOT NULL,
      PRIMARY KEY (migration, table_key)
    )`);
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

/** Page ranges for a table without any key (correct only while nobody writes: full-only mode). */
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

export async function planTableChunks(src: Client, t: CopyTable, chunkBytes: number): Promise<PlannedChunk[]> {
  const chunks = Math.min(1000, Math.max(1, Math.ceil(t.bytes / chunkBytes)));
  const key = t.chunkKey;
  if (!key) return pageChunks(src, t, chunks);
  return rangesFromBounds(await chunkBounds(src, t, chunks)).map((range) => ({
    predicate: rangePredicate(key.columns, key.types, range),
    range,
  }));
}

/**
 * Plan (once) and return every table with its chunk count and what is already
 * copied, the most index-build work first (then the largest). Idempotent: an existing plan is reused as it is.
 */
export async function planFullLoad(input: { config: Config; runToken: string }): Promise<PlannedTable[]> {
  const { config, runToken } = input;
  // The data settings: key bounds are read as text here and parsed back as literals by the chunks.
  return withSessions(config, 'plan', async (src, dst) => {
    const tables = await readCopyTables(src, config);
    await ensureChunkTable(dst);
    const existing = await dst.query<{ table_key: string; chunks: string; done: number[] | null; rows: string | null; bytes: string | null }>(
      `SELECT table_key, count(*) AS chunks, array_agg(chunk ORDER BY chunk) FILTER (WHERE state = 'done') AS done,
              sum(rows) FILTER (WHERE state = 'done') AS rows, sum(bytes) FILTER (WHERE state = 'done') AS bytes
         FROM pgshift.chunks WHERE migration = $1 GROUP BY table_key`,
      [config.name],
    );
    const known = new Map(existing.rows.map((r) => [r.table_key, r]));
    const planned: PlannedTable[] = [];
    for (const t of tables) {
      let k = known.get(t.key);
      if (!k) {
        const preds = await planTableChunks(src, t, config.fullLoad.chunkMb * 1024 * 1024);
        await fenced(dst, config.name, runToken, async () => {
          await dst.query(
            `INSERT INTO pgshift.copy_tables (migration, table_key, spec) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
            [config.name, t.key, JSON.stringify(t)],
          );
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
        k = { table_key: t.key, chunks: String(preds.length), done: null, rows: null, bytes: null };
      }
      planned.push({
        key: t.key,
        display: t.display,
        target: displayName(t.target.schema, t.target.table),
        chunks: Number(k.chunks),
        estimatedRows: t.estimatedRows,
        bytes: t.bytes,
        indexWork: t.estimatedRows * t.indexes,
        done: k.done ?? [],
        rowsDone: Number(k.rows ?? 0),
        bytesDone: Number(k.bytes ?? 0),
      });
    }
    // The most index-build work first, then the largest: a table's keys and indexes
    // are built while later tables copy, so the load does not end on a long build.
    return planned.sort((a, b) => b.indexWork - a.indexWork || b.bytes - a.bytes);
  });
}
