// What the full load needs to know about each selected source table: its
// columns (without generated and dropped ones), the row key it is chunked by
// (the selection's, so verification and change apply range over the same
// key), its size, and its destination name.
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { parseTableName, qualified } from '../../lib/ident';
import { nameMapper } from '../../lib/name-mapping';
import { dataTables, readSelection, type RowKey } from '../selection';

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
  /**
   * The table's row key (source names); `integer`: one integer column, split by
   * arithmetic. Null when the table has no key (chunked by pages).
   */
  chunkKey: (RowKey & { integer: boolean }) | null;
  estimatedRows: number;
  /** The table's size with its TOAST table (pg_table_size). */
  bytes: number;
  /** Indexes on the source table (the work its key and index builds will take after the copy). */
  indexes: number;
  filter: string | null;
  binary: boolean;
}

export const tableKey = (schema: string, table: string) => JSON.stringify([schema, table]);

/** First OID available to user objects: everything below is built in. */
const FIRST_NORMAL_OBJECT_ID = 16384;

const INTEGER_TYPES = ['smallint', 'integer', 'bigint'];

/** The selection's tables with data (plain tables and partitions), ready to plan and copy. */
export async function readCopyTables(src: Client, config: Config): Promise<CopyTable[]> {
  const tables = dataTables(await readSelection(src, config));
  const filterBy = new Map(Object.entries(config.objects.filters).map(([t, f]) => [JSON.stringify(Object.values(parseTableName(t))), f]));
  const map = nameMapper(config.objects);
  const oids = tables.map((t) => t.oid);
  const sizes = new Map(
    (
      await src.query<{ oid: number; est: string; bytes: string; indexes: number }>(
        `SELECT c.oid, greatest(c.reltuples, 0)::bigint AS est, pg_table_size(c.oid) AS bytes,
                (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid)::int AS indexes
           FROM pg_class c WHERE c.oid = ANY($1)`,
        [oids],
      )
    ).rows.map((r) => [r.oid, r]),
  );
  const columnsOf = new Map<number, CopyColumn[]>();
  const cols = await src.query<{ relid: number; name: string; type: string; typoid: number; elemoid: number; basetype: number }>(
    `SELECT a.attrelid AS relid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.atttypid AS typoid,
            coalesce(nullif(t.typelem, 0), a.atttypid) AS elemoid,
            coalesce(nullif(t.typbasetype, 0), a.atttypid) AS basetype
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
        -- generated columns (12 and later) are computed on the destination; to_jsonb lets the same query run on 11
        AND coalesce(to_jsonb(a)->>'attgenerated', '') = ''
      ORDER BY a.attrelid, a.attnum`,
    [oids],
  );
  for (const c of cols.rows) {
    const list = columnsOf.get(c.relid) ?? [];
    list.push({
      name: c.name,
      type: c.type,
      builtin: c.typoid < FIRST_NORMAL_OBJECT_ID || (c.elemoid < FIRST_NORMAL_OBJECT_ID && c.basetype < FIRST_NORMAL_OBJECT_ID),
    });
    columnsOf.set(c.relid, list);
  }
  return tables.map((r) => {
    const columns = columnsOf.get(r.oid) ?? [];
    const size = sizes.get(r.oid)!;
    const target = map.table(r.schema, r.name);
    const k = r.key;
    return {
      key: tableKey(r.schema, r.name),
      schema: r.schema,
      table: r.name,
      display: r.display,
      target: { schema: target.schema, table: target.table },
      columns,
      targetColumns: columns.map((c) => map.column(r.schema, r.name, c.name)),
      chunkKey: k ? { ...k, integer: k.columns.length === 1 && INTEGER_TYPES.includes(k.types[0]) } : null,
      estimatedRows: Number(size.est),
      bytes: Number(size.bytes),
      indexes: size.indexes,
      filter: filterBy.get(tableKey(r.schema, r.name)) ?? filterBy.get(tableKey(r.root.schema, r.root.name)) ?? null,
      binary: columns.every((c) => c.builtin),
    };
  });
}

export const sourceName = (t: Pick<CopyTable, 'schema' | 'table'>) => qualified(t.schema, t.table);
export const targetName = (t: Pick<CopyTable, 'target'>) => qualified(t.target.schema, t.target.table);
