// The one reading of "what does this migration move": the relations of the
// selected schemas (the control schema and extension members never), narrowed
// by objects.include / objects.exclude, each table with the key that identifies
// its rows (rules in lib/selection.ts). Precheck, compatibility report, schema
// migration, full load and data verification all read it here; the change
// apply keys rows by `key` too.
//
//   readSelection(client, config) → {
//     relations: [{ oid, schema, name, display, kind, unlogged, isPartition, root,
//                   columns, key: { index, oid, columns, types, primary, chosenAs } | null,
//                   replicaIdentity: { mode, index, indexName } }],
//     excluded, missingSchemas }
//
// Read-only catalog queries, safe inside the caller's snapshot transaction and
// under any search_path (everything is qualified with pg_catalog).
import type { Client } from 'pg';
import type { Config } from '../lib/config';
import { displayName } from '../lib/ident';
import { chooseRowKey, selectsByName, type KeyCandidate, type RelationKind, type ReplicaIdentity, type RowKey } from '../lib/selection';
import { CONTROL_SCHEMA } from './control';

export type { RowKey } from '../lib/selection';

export interface SelectedRelation {
  oid: number;
  schema: string;
  name: string;
  /** schema.name in display syntax. */
  display: string;
  kind: RelationKind;
  unlogged: boolean;
  isPartition: boolean;
  /** The root of its partition tree (itself when not a partition): its name selects the tree, its row filter applies. */
  root: { schema: string; name: string };
  /** Column names in order. */
  columns: string[];
  /** The key identifying a row (tables r and p); null for a table without one and for f, v, m. */
  key: RowKey | null;
  /**
   * The source's replica identity (`indexName` names the index when mode is i):
   * what UPDATE and DELETE log of the old row. A change is applied by `key`,
   * which the old row holds only when the replica identity logs it; the
   * precheck's replica-identity item names the tables where it does not.
   */
  replicaIdentity: ReplicaIdentity & { indexName: string | null };
}

export interface Selection {
  /** Selected relations by schema, then name. */
  relations: SelectedRelation[];
  /** Tables (r, p, f) of the selected schemas that objects.include / objects.exclude leave out. */
  excluded: Pick<SelectedRelation, 'oid' | 'schema' | 'name' | 'display' | 'kind'>[];
  /** Schemas of objects.schemas that do not exist on the server. */
  missingSchemas: string[];
}

/** Tables that hold data: copied by the full load, replicated, verified (plain tables and partitions). */
export const dataTables = (s: Selection) => s.relations.filter((r) => r.kind === 'r');

interface RelationRow {
  oid: number;
  schema: string;
  name: string;
  kind: RelationKind;
  persistence: string;
  is_partition: boolean;
  root_schema: string;
  root_name: string;
  replident: ReplicaIdentity['mode'];
  columns: string[];
}

// A partition's root is found by walking pg_inherits up while the relation is
// a partition (pg_partition_root needs PostgreSQL 12); the root may live in a
// schema that is not selected.
const RELATIONS = `
  WITH RECURSIVE rel AS (
    SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind, c.relpersistence AS persistence,
           c.relispartition AS is_partition, c.relreplident AS replident
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e')
  ), up AS (
    SELECT oid AS relid, oid AS ancestor, is_partition AS more, 0 AS depth FROM rel
    UNION ALL
    SELECT up.relid, i.inhparent, p.relispartition, up.depth + 1
      FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.ancestor JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
     WHERE up.more
  ), root AS (
    SELECT DISTINCT ON (relid) relid, ancestor FROM up ORDER BY relid, depth DESC
  )
  SELECT rel.oid, rel.schema, rel.name, rel.kind, rel.persistence, rel.is_partition, rel.replident::text AS replident,
         rn.nspname AS root_schema, rc.relname AS root_name,
         ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns
    FROM rel
    JOIN root ON root.relid = rel.oid
    JOIN pg_catalog.pg_class rc ON rc.oid = root.ancestor
    JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
   ORDER BY rel.schema, rel.name`;

// Every UNIQUE index of the given tables with what the key rule needs to know.
const UNIQUE_INDEXES = `
  SELECT i.indrelid AS relid, i.indexrelid AS oid, ic.relname AS name, i.indisprimary AS primary, i.indisreplident AS replident,
         i.indisvalid AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL AND k.not_null AS usable,
         k.columns, k.types
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
   CROSS JOIN LATERAL (
     SELECT coalesce(array_agg(a.attname::text ORDER BY u.ord), '{}') AS columns,
            coalesce(array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY u.ord), '{}') AS types,
            coalesce(bool_and(a.attnotnull), false) AS not_null
       FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY AS u(attnum, ord)
       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum
      WHERE u.ord <= i.indnkeyatts) k
   WHERE i.indrelid = ANY($1) AND i.indisunique`;

export async function readSelection(client: Client, config: Pick<Config, 'objects'>): Promise<Selection> {
  const schemas = config.objects.schemas.filter((s) => s !== CONTROL_SCHEMA);
  const present = await client.query<{ nspname: string }>('SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY($1)', [schemas]);
  const missingSchemas = schemas.filter((s) => !present.rows.some((r) => r.nspname === s));

  const rows = (await client.query<RelationRow>(RELATIONS, [schemas])).rows.map((r) => ({
    ...r,
    display: displayName(r.schema, r.name),
    root: { schema: r.root_schema, name: r.root_name },
  }));
  const selects = selectsByName(config.objects);
  const chosen = rows.filter(selects);
  const excluded = rows.filter((r) => !selects(r)).map(({ oid, schema, name, display, kind }) => ({ oid, schema, name, display, kind }));

  const tables = chosen.filter((r) => r.kind === 'r' || r.kind === 'p').map((r) => r.oid);
  const candidates = new Map<number, (KeyCandidate & { relid: number })[]>();
  const indexes = await client.query<{
    relid: number;
    oid: number;
    name: string;
    primary: boolean;
    replident: boolean;
    usable: boolean;
    columns: string[];
    types: string[];
  }>(UNIQUE_INDEXES, [tables]);
  for (const i of indexes.rows) {
    const list = candidates.get(i.relid) ?? [];
    list.push({
      relid: i.relid,
      oid: i.oid,
      name: i.name,
      primary: i.primary,
      replicaIdentity: i.replident,
      usable: i.usable,
      columns: i.columns,
      types: i.types,
    });
    candidates.set(i.relid, list);
  }

  const relations: SelectedRelation[] = chosen.map((r) => {
    const own = candidates.get(r.oid) ?? [];
    const ri = r.replident === 'i' ? own.find((c) => c.replicaIdentity) : undefined;
    return {
      oid: r.oid,
      schema: r.schema,
      name: r.name,
      display: r.display,
      kind: r.kind,
      unlogged: r.persistence === 'u',
      isPartition: r.is_partition,
      root: r.root,
      columns: r.columns,
      key: chooseRowKey(own),
      replicaIdentity: { mode: r.replident, index: ri?.oid ?? null, indexName: ri?.name ?? null },
    };
  });
  return { relations, excluded, missingSchemas };
}
