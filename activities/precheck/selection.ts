// The source relations a config selects, read once per precheck (and by the
// compatibility report): kind, persistence, keys, replica identity. Selection
// follows config.objects: schemas, then include (empty = all) and exclude, a
// partition following its partitioned root.
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { displayName, parseTableName } from '../../lib/ident';

export interface SelectedRelation {
  oid: number;
  schema: string;
  name: string;
  display: string;
  /** r table, p partitioned table, f foreign table, m materialized view, v view */
  kind: 'r' | 'p' | 'f' | 'm' | 'v';
  unlogged: boolean;
  isPartition: boolean;
  hasPrimaryKey: boolean;
  /** Name of a usable non-null, non-partial UNIQUE index, when there is no PK. */
  uniqueKey: string | null;
  /** pg_class.relreplident: d default, n nothing, f full, i index */
  replicaIdentity: string;
  columns: string[];
}

export interface Selection {
  relations: SelectedRelation[];
  /** Schemas of objects.schemas that do not exist on the source. */
  missingSchemas: string[];
}

const key = (schema: string, name: string) => JSON.stringify([schema, name]);

export async function readSelection(src: Client, config: Config): Promise<Selection> {
  const { schemas, include, exclude } = config.objects;
  const present = await src.query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)', [schemas]);
  const missingSchemas = schemas.filter((s) => !present.rows.some((r) => r.nspname === s));
  const r = await src.query<{
    oid: number;
    schema: string;
    name: string;
    kind: SelectedRelation['kind'];
    persistence: string;
    ispartition: boolean;
    root_schema: string;
    root_name: string;
    pk: boolean;
    unique_key: string | null;
    replident: string;
    columns: string[];
  }>(
    `SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind, c.relpersistence AS persistence,
            c.relispartition AS ispartition, rn.nspname AS root_schema, r.relname AS root_name,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS pk,
            (SELECT ic.relname::text FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
              WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
                AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k WHERE NOT a.attnotnull)
              ORDER BY i.indnatts, ic.relname LIMIT 1) AS unique_key,
            c.relreplident::text AS replident,
            ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_class r ON r.oid = coalesce(pg_partition_root(c.oid)::oid, c.oid)
       JOIN pg_namespace rn ON rn.oid = r.relnamespace
      WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'f', 'm', 'v')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
      ORDER BY 2, 3`,
    [schemas],
  );
  const inc = new Set(include.map((t) => key(...(Object.values(parseTableName(t)) as [string, string]))));
  const exc = new Set(exclude.map((t) => key(...(Object.values(parseTableName(t)) as [string, string]))));
  const relations = r.rows
    .filter((x) => {
      const self = key(x.schema, x.name);
      const root = key(x.root_schema, x.root_name);
      // include/exclude name tables; views and matviews follow the schemas.
      if (x.kind === 'v' || x.kind === 'm') return true;
      if (inc.size && !inc.has(self) && !inc.has(root)) return false;
      return !exc.has(self) && !exc.has(root);
    })
    .map((x) => ({
      oid: x.oid,
      schema: x.schema,
      name: x.name,
      display: displayName(x.schema, x.name),
      kind: x.kind,
      unlogged: x.persistence === 'u',
      isPartition: x.ispartition,
      hasPrimaryKey: x.pk,
      uniqueKey: x.unique_key,
      replicaIdentity: x.replident,
      columns: x.columns,
    }));
  return { relations, missingSchemas };
}

/** Tables that hold data and are copied / replicated (plain tables and partitions). */
export const dataTables = (s: Selection) => s.relations.filter((r) => r.kind === 'r');
