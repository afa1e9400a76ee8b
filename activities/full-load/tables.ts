// What the full load needs to know about each selected source table: its
// columns (without generated and dropped ones), the key it is chunked by,
// its size, and its destination name.
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { displayName, parseTableName, qualified } from '../../lib/ident';
import { nameMapper } from '../../lib/name-mapping';

export interface CopyColumn {
  name: string;
  /** format_type() of the column, e.g. numeric(38,10). */
  type: string;
  /** Binary COPY is safe for built-in types only (user types carry OIDs in binary). */
  builtin: boolean;
}

export interface CopyTable {
  /** Stable id: JSON of [schema, table] on the source. */
  key: string;
  schema: string;
  table: string;
  display: string;
  target: { schema: string; table: string };
  columns: CopyColumn[];
  targetColumns: string[];
  /** Key columns (names) and their types; null when the table has no usable key. */
  chunkKey: { columns: string[]; types: string[]; integer: boolean } | null;
  estimatedRows: number;
  bytes: number;
  /** Indexes on the source table (the work its key and index builds will take after the copy). */
  indexes: number;
  filter: string | null;
  binary: boolean;
}

export const tableKey = (schema: string, table: string) => JSON.stringify([schema, table]);

/** First OID available to user objects: everything below is built in. */
const FIRST_NORMAL_OBJECT_ID = 16384;

/**
 * Leaf tables with data (plain tables and partitions) in the selected schemas,
 * honouring include/exclude (a partitioned parent selects its partitions).
 */
export async function readCopyTables(src: Client, config: Config): Promise<CopyTable[]> {
  const { schemas, include, exclude, filters } = config.objects;
  const inc = new Set(include.map((t) => JSON.stringify(Object.values(parseTableName(t)))));
  const exc = new Set(exclude.map((t) => JSON.stringify(Object.values(parseTableName(t)))));
  const filterBy = new Map(Object.entries(filters).map(([t, f]) => [JSON.stringify(Object.values(parseTableName(t))), f]));
  const map = nameMapper(config.objects);
  // PostgreSQL 11 has neither pg_partition_root() nor generated columns.
  const v11 = Number((await src.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0].v) < 120000;
  const rootOf = v11
    ? `(WITH RECURSIVE up(oid, depth) AS (SELECT c.oid, 0 UNION ALL
          SELECT i.inhparent, up.depth + 1 FROM up JOIN pg_class p ON p.oid = up.oid AND p.relispartition JOIN pg_inherits i ON i.inhrelid = up.oid)
        SELECT oid FROM up ORDER BY depth DESC LIMIT 1)`
    : 'coalesce(pg_partition_root(c.oid)::oid, c.oid)';

  const rels = await src.query<{
    oid: number;
    schema: string;
    table: string;
    root_schema: string;
    root_table: string;
    est: string;
    bytes: string;
    indexes: number;
  }>(
    `SELECT c.oid, n.nspname AS schema, c.relname AS table,
            rn.nspname AS root_schema, r.relname AS root_table,
            greatest(c.reltuples, 0)::bigint AS est, pg_table_size(c.oid) AS bytes,
            (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid)::int AS indexes
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       -- the root of a partition tree decides selection and filters
       JOIN pg_class r ON r.oid = ${rootOf}
       JOIN pg_namespace rn ON rn.oid = r.relnamespace
      WHERE c.relkind = 'r' AND n.nspname = ANY($1)
      ORDER BY n.nspname, c.relname`,
    [schemas],
  );
  const out: CopyTable[] = [];
  for (const r of rels.rows) {
    const self = JSON.stringify([r.schema, r.table]);
    const root = JSON.stringify([r.root_schema, r.root_table]);
    if (inc.size && !inc.has(self) && !inc.has(root)) continue;
    if (exc.has(self) || exc.has(root)) continue;
    const cols = await src.query<{ name: string; type: string; typoid: number; elemoid: number; basetype: number }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.atttypid AS typoid,
              coalesce(nullif(t.typelem, 0), a.atttypid) AS elemoid,
              coalesce(nullif(t.typbasetype, 0), a.atttypid) AS basetype
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped${v11 ? '' : " AND a.attgenerated = ''"}
        ORDER BY a.attnum`,
      [r.oid],
    );
    const columns = cols.rows.map((c) => ({
      name: c.name,
      type: c.type,
      builtin: c.typoid < FIRST_NORMAL_OBJECT_ID || (c.elemoid < FIRST_NORMAL_OBJECT_ID && c.basetype < FIRST_NORMAL_OBJECT_ID),
    }));
    const key = await src.query<{ columns: string[]; types: string[] }>(
      `SELECT array_agg(a.attname::text ORDER BY k.ord) AS columns,
              array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.ord) AS types
         FROM (SELECT i.indexrelid, i.indkey
                 FROM pg_index i
                WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
                  AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k WHERE NOT a.attnotnull)
                ORDER BY i.indisprimary DESC, i.indnatts, i.indexrelid
                LIMIT 1) i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = $1 AND a.attnum = k.attnum
        GROUP BY i.indexrelid`,
      [r.oid],
    );
    const k = key.rows[0];
    const target = map.table(r.schema, r.table);
    out.push({
      key: tableKey(r.schema, r.table),
      schema: r.schema,
      table: r.table,
      display: displayName(r.schema, r.table),
      target: { schema: target.schema, table: target.table },
      columns,
      targetColumns: columns.map((c) => map.column(r.schema, r.table, c.name)),
      chunkKey: k
        ? { columns: k.columns, types: k.types, integer: k.columns.length === 1 && ['smallint', 'integer', 'bigint'].includes(k.types[0]) }
        : null,
      estimatedRows: Number(r.est),
      bytes: Number(r.bytes),
      indexes: r.indexes,
      filter: filterBy.get(self) ?? filterBy.get(root) ?? null,
      binary: columns.every((c) => c.builtin),
    });
  }
  return out;
}

export const sourceName = (t: Pick<CopyTable, 'schema' | 'table'>) => qualified(t.schema, t.table);
export const targetName = (t: Pick<CopyTable, 'target'>) => qualified(t.target.schema, t.target.table);
