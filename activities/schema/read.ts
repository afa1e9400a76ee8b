// Catalog reads on the source: the selected objects, as the server itself
// renders them. The session has the catalog settings (lib/io/session.ts):
// with an empty search_path every name the server prints outside pg_catalog
// comes out schema-qualified and can be mapped.
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { CONTROL_SCHEMA } from '../control';
import { migratedReplicaIdentity, type ReplicaIdentity } from '../../lib/selection';
import { readSelection, type RowKey } from '../selection';

/** Catalog identity of an object: `pg_class:16384`. */
export const objKey = (catalog: string, oid: number) => `${catalog}:${oid}`;

export interface CatSchema {
  oid: number;
  name: string;
  owner: string;
  acl: string[] | null;
}

export interface CatExtension {
  oid: number;
  name: string;
  schema: string;
}

export interface CatRelation {
  oid: number;
  schema: string;
  name: string;
  /** r table, p partitioned, v view, m matview, S sequence, c composite type, f foreign table. */
  kind: string;
  persistence: string;
  options: string[] | null;
  isPartition: boolean;
  partBound: string | null;
  partKey: string | null;
  /** Direct parents: the partitioned parent, or INHERITS parents. */
  parents: number[];
  replIdent: string;
  populated: boolean;
  rowType: number;
  rowArrayType: number;
  accessMethod: string | null;
  viewDef: string | null;
  owner: string;
  acl: string[] | null;
}

export interface CatColumn {
  relid: number;
  num: number;
  name: string;
  type: string;
  typeOid: number;
  notNull: boolean;
  defaultOid: number | null;
  defaultExpr: string | null;
  identity: string;
  generated: string;
  /** Schema-qualified collation when it differs from the type's. */
  collation: [string, string] | null;
  isLocal: boolean;
  acl: string[] | null;
}

export interface CatConstraint {
  oid: number;
  name: string;
  type: string;
  relid: number;
  typid: number;
  indexOid: number;
  refRelid: number;
  keys: number[];
  refKeys: number[];
  deferrable: boolean;
  deferred: boolean;
  validated: boolean;
  isLocal: boolean;
  noInherit: boolean;
  parentOid: number;
  updateAction: string;
  deleteAction: string;
  matchType: string;
  deleteSetColumns: number[] | null;
  def: string;
}

export interface CatIndex {
  oid: number;
  relid: number;
  name: string;
  kind: string;
  unique: boolean;
  primary: boolean;
  replIdent: boolean;
  valid: boolean;
  partial: boolean;
  expressions: boolean;
  keyCount: number;
  keys: number[];
  nullsNotDistinct: boolean;
  options: string[] | null;
  constraintOid: number | null;
  parentIndex: number | null;
  def: string;
}

export interface CatSequence {
  relid: number;
  type: string;
  start: string;
  increment: string;
  min: string;
  max: string;
  cache: string;
  cycle: boolean;
  /** The column owning it: `a` serial (OWNED BY), `i` identity. */
  owner: { relid: number; column: number; kind: 'a' | 'i' } | null;
}

export interface CatType {
  oid: number;
  schema: string;
  name: string;
  /** e enum, d domain, r range (composite types are relations of kind c). */
  kind: string;
  arrayType: number;
  labels: string[] | null;
  baseType: string | null;
  notNull: boolean;
  defaultExpr: string | null;
  collation: [string, string] | null;
  range: {
    subtype: string;
    opclass: [string, string] | null;
    collation: [string, string] | null;
    canonical: string | null;
    subdiff: [string, string] | null;
    multirange: { oid: number; arrayType: number; name: string } | null;
  } | null;
  owner: string;
  acl: string[] | null;
}

export interface CatFunction {
  oid: number;
  schema: string;
  name: string;
  kind: string;
  def: string | null;
  identityArgs: string;
  /** SQL-standard body (BEGIN ATOMIC): deparsed, so names in it are mapped. */
  atomicBody: boolean;
  owner: string;
  acl: string[] | null;
}

export interface CatTrigger {
  oid: number;
  relid: number;
  name: string;
  def: string;
  enabled: string;
}

export interface CatRule {
  oid: number;
  relid: number;
  name: string;
}

export interface CatCollation {
  oid: number;
  schema: string;
  name: string;
  provider: string;
  deterministic: boolean;
  collate: string | null;
  ctype: string | null;
  locale: string | null;
  owner: string;
}

export interface CatStatistic {
  oid: number;
  schema: string;
  name: string;
  relid: number;
  def: string;
}

export interface CatDepend {
  catalog: string;
  oid: number;
  sub: number;
  refCatalog: string;
  refOid: number;
  refSub: number;
  type: string;
}

export interface CatComment {
  catalog: string;
  oid: number;
  sub: number;
  text: string;
}

export interface SourceCatalog {
  version: number;
  keywords: Set<string>;
  /** Keywords that, used as names, are always double-quoted (all but the unreserved ones). */
  quotedKeywords: Set<string>;
  schemas: CatSchema[];
  extensions: CatExtension[];
  /** Extension member (`objKey`) → extension oid. */
  extensionMembers: Map<string, number>;
  /** [schema, name] (JSON) of extension members in selected schemas: keep their names. */
  extensionMemberNames: Set<string>;
  /** The selected relations (activities/selection.ts), with the sequences and composite types of the selected schemas. */
  relations: CatRelation[];
  /** Tables of the selected schemas left out by include/exclude. */
  excludedRelations: CatRelation[];
  /** The row key of each selected table (r, p) that has one, by table oid. */
  rowKeys: Map<number, RowKey>;
  columns: Map<number, CatColumn[]>;
  constraints: CatConstraint[];
  indexes: CatIndex[];
  sequences: Map<number, CatSequence>;
  types: CatType[];
  functions: CatFunction[];
  triggers: CatTrigger[];
  rules: CatRule[];
  /** View `_RETURN` rule oid → view oid. */
  viewRules: Map<number, number>;
  collations: CatCollation[];
  statistics: CatStatistic[];
  policies: { relid: number; name: string }[];
  depends: CatDepend[];
  comments: CatComment[];
}

/**
 * pg_depend by referencing object (objKey → referenced objKeys), without the
 * links of serial sequences to their column: OWNED BY is a separate, later
 * statement, and the column's DEFAULT already depends on the sequence.
 */
export function dependencyMap(cat: Pick<SourceCatalog, 'depends' | 'sequences'>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const d of cat.depends) {
    if (d.catalog === 'pg_class' && d.type === 'a' && cat.sequences.has(d.oid)) continue;
    const k = objKey(d.catalog, d.oid);
    const list = out.get(k);
    if (list) list.push(objKey(d.refCatalog, d.refOid));
    else out.set(k, [objKey(d.refCatalog, d.refOid)]);
  }
  return out;
}

/**
 * The replica identity each table (r, p) of the catalog gets when migrated
 * (lib/selection.ts `migratedReplicaIdentity`), by table oid.
 */
export function migratedReplicaIdentities(cat: Pick<SourceCatalog, 'relations' | 'indexes' | 'rowKeys'>): Map<number, ReplicaIdentity> {
  const replicaIndex = new Map(cat.indexes.filter((i) => i.replIdent).map((i) => [i.relid, i.oid]));
  const out = new Map<number, ReplicaIdentity>();
  for (const r of cat.relations) {
    if (r.kind !== 'r' && r.kind !== 'p') continue;
    const source = { mode: r.replIdent as ReplicaIdentity['mode'], index: replicaIndex.get(r.oid) ?? null };
    out.set(r.oid, migratedReplicaIdentity(r.kind, source, cat.rowKeys.get(r.oid) ?? null));
  }
  return out;
}

/** Catalog rows are mapped field by field into the typed model right after each query. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Row = Record<string, any>;

async function rows(src: Client, sql: string, params: unknown[] = []): Promise<Row[]> {
  return (await src.query(sql, params)).rows;
}

const pair = (schema: string | null, name: string | null): [string, string] | null => (schema && name ? [schema, name] : null);

const NOT_EXTENSION_MEMBER = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = '${catalog}'::pg_catalog.regclass AND e.objid = ${oid} AND e.deptype = 'e')`;

export async function readCatalog(src: Client, config: Config): Promise<SourceCatalog> {
  const version = Number((await rows(src, `SELECT current_setting('server_version_num') AS v`))[0].v);
  const v14 = version >= 140000;
  const v15 = version >= 150000;
  const keywordRows = await rows(src, 'SELECT word, catcode FROM pg_catalog.pg_get_keywords()');
  const keywords = new Set(keywordRows.map((r) => r.word as string));
  const quotedKeywords = new Set(keywordRows.filter((r) => r.catcode !== 'U').map((r) => r.word as string));
  const wanted = config.objects.schemas.filter((s) => s !== CONTROL_SCHEMA);

  const schemas: CatSchema[] = (
    await rows(
      src,
      `SELECT n.oid, n.nspname AS name, pg_catalog.pg_get_userbyid(n.nspowner) AS owner, n.nspacl::text[] AS acl
         FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY($1) ORDER BY n.nspname`,
      [wanted],
    )
  ).map((r) => ({ oid: r.oid, name: r.name, owner: r.owner, acl: r.acl }));
  const names = schemas.map((s) => s.name);

  const members = await rows(
    src,
    `SELECT d.classid::pg_catalog.regclass::text AS catalog, d.objid, d.refobjid AS ext,
            (pg_catalog.pg_identify_object(d.classid, d.objid, 0)).schema AS schema,
            (pg_catalog.pg_identify_object(d.classid, d.objid, 0)).name AS name
       FROM pg_catalog.pg_depend d
      WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'`,
  );
  const extensionMembers = new Map(members.map((m) => [objKey(m.catalog, m.objid), m.ext as number]));
  // Array types of extension types come with them, but older servers do not record them as members.
  for (const a of await rows(
    src,
    `SELECT t.typarray, d.refobjid AS ext FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_type t ON t.oid = d.objid
      WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
        AND d.deptype = 'e' AND t.typarray <> 0`,
  )) {
    extensionMembers.set(objKey('pg_type', a.typarray), a.ext);
  }
  const extensionMemberNames = new Set(members.filter((m) => names.includes(m.schema) && m.name).map((m) => JSON.stringify([m.schema, m.name])));
  const extensions: CatExtension[] = (
    await rows(
      src,
      `SELECT e.oid, e.extname AS name, n.nspname AS schema
         FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname <> 'plpgsql' ORDER BY e.extname`,
    )
  ).map((r) => ({ oid: r.oid, name: r.name, schema: r.schema }));

  const allRelations: CatRelation[] = (
    await rows(
      src,
      `SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind, c.relpersistence AS persistence,
              c.reloptions AS options, c.relispartition AS is_partition,
              pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS part_bound,
              CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS part_key,
              coalesce((SELECT array_agg(i.inhparent ORDER BY i.inhseqno) FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid), '{}') AS parents,
              c.relreplident AS repl_ident, c.relispopulated AS populated, c.reltype AS row_type, coalesce(t.typarray, 0) AS row_array_type,
              CASE WHEN c.relkind IN ('r', 'm') AND am.amname <> 'heap' THEN am.amname END AS access_method,
              CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid, true) END AS view_def,
              pg_catalog.pg_get_userbyid(c.relowner) AS owner, c.relacl::text[] AS acl
         FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_catalog.pg_type t ON t.oid = c.reltype
         LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
        WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c', 'f')
          AND ${NOT_EXTENSION_MEMBER('pg_catalog.pg_class', 'c.oid')}
        ORDER BY n.nspname, c.relname`,
      [names],
    )
  ).map((r) => ({
    oid: r.oid,
    schema: r.schema,
    name: r.name,
    kind: r.kind,
    persistence: r.persistence,
    options: r.options,
    isPartition: r.is_partition,
    partBound: r.part_bound,
    partKey: r.part_key,
    parents: r.parents.map(Number),
    replIdent: r.repl_ident,
    populated: r.populated,
    rowType: r.row_type,
    rowArrayType: r.row_array_type,
    accessMethod: r.access_method,
    viewDef: r.view_def,
    owner: r.owner,
    acl: r.acl,
  }));
  // Tables, views and foreign tables as the selection decides; sequences and composite types follow the schemas.
  const selection = await readSelection(src, config);
  const selected = new Set(selection.relations.map((r) => r.oid));
  const left = new Set(selection.excluded.map((r) => r.oid));
  const relations = allRelations.filter((r) => r.kind === 'S' || r.kind === 'c' || selected.has(r.oid));
  const excludedRelations = allRelations.filter((r) => left.has(r.oid));
  const rowKeys = new Map(selection.relations.filter((r) => r.key).map((r) => [r.oid, r.key!]));
  const relOids = relations.map((r) => r.oid);
  const tableOids = relations.filter((r) => 'rpmf'.includes(r.kind)).map((r) => r.oid);

  const columns = new Map<number, CatColumn[]>();
  for (const r of await rows(
    src,
    `SELECT a.attrelid, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.atttypid,
            a.attnotnull, ad.oid AS def_oid, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS def,
            a.attidentity,
            -- generated columns exist from 12 on; read through to_jsonb so one query serves 11 too
            coalesce(pg_catalog.to_jsonb(a)->>'attgenerated', '') AS attgenerated, a.attislocal, a.attacl::text[] AS acl,
            CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN cn.nspname END AS coll_schema,
            CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN co.collname END AS coll_name
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
       LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
       LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
      WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [relOids],
  )) {
    const list = columns.get(r.attrelid) ?? [];
    list.push({
      relid: r.attrelid,
      num: r.attnum,
      name: r.attname,
      type: r.type,
      typeOid: r.atttypid,
      notNull: r.attnotnull,
      defaultOid: r.def_oid,
      defaultExpr: r.def,
      identity: r.attidentity,
      generated: r.attgenerated,
      collation: pair(r.coll_schema, r.coll_name),
      isLocal: r.attislocal,
      acl: r.acl,
    });
    columns.set(r.attrelid, list);
  }

  const types: CatType[] = (
    await rows(
      src,
      `SELECT t.oid, n.nspname AS schema, t.typname AS name, t.typtype AS kind, t.typarray,
              (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) AS labels,
              CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END AS base_type,
              t.typnotnull, pg_catalog.pg_get_expr(t.typdefaultbin, 0) AS default_expr,
              CASE WHEN t.typtype = 'd' AND t.typcollation <> bt.typcollation THEN cn.nspname END AS coll_schema,
              CASE WHEN t.typtype = 'd' AND t.typcollation <> bt.typcollation THEN co.collname END AS coll_name,
              pg_catalog.format_type(r.rngsubtype, NULL) AS subtype,
              CASE WHEN NOT opc.opcdefault THEN opn.nspname END AS opc_schema, CASE WHEN NOT opc.opcdefault THEN opc.opcname END AS opc_name,
              CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN rcn.nspname END AS rcoll_schema,
              CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN rco.collname END AS rcoll_name,
              nullif(r.rngcanonical, 0)::pg_catalog.regproc::text AS canonical,
              dn.nspname AS diff_schema, dp.proname AS diff_name,
              ${v14 ? 'r.rngmultitypid' : 'NULL::oid'} AS multi_oid, mt.typarray AS multi_array, mt.typname AS multi_name,
              pg_catalog.pg_get_userbyid(t.typowner) AS owner, t.typacl::text[] AS acl
         FROM pg_catalog.pg_type t
         JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
         LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
         LEFT JOIN pg_catalog.pg_collation co ON co.oid = t.typcollation
         LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
         LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
         LEFT JOIN pg_catalog.pg_type st ON st.oid = r.rngsubtype
         LEFT JOIN pg_catalog.pg_opclass opc ON opc.oid = r.rngsubopc
         LEFT JOIN pg_catalog.pg_namespace opn ON opn.oid = opc.opcnamespace
         LEFT JOIN pg_catalog.pg_collation rco ON rco.oid = r.rngcollation
         LEFT JOIN pg_catalog.pg_namespace rcn ON rcn.oid = rco.collnamespace
         LEFT JOIN pg_catalog.pg_proc dp ON dp.oid = r.rngsubdiff
         LEFT JOIN pg_catalog.pg_namespace dn ON dn.oid = dp.pronamespace
         LEFT JOIN pg_catalog.pg_type mt ON mt.oid = ${v14 ? 'r.rngmultitypid' : '0'}
        WHERE n.nspname = ANY($1) AND t.typtype IN ('e', 'd', 'r')
          AND ${NOT_EXTENSION_MEMBER('pg_catalog.pg_type', 't.oid')}
        ORDER BY n.nspname, t.typname`,
      [names],
    )
  ).map((r) => ({
    oid: r.oid,
    schema: r.schema,
    name: r.name,
    kind: r.kind,
    arrayType: r.typarray,
    labels: r.labels,
    baseType: r.base_type,
    notNull: r.typnotnull,
    defaultExpr: r.default_expr,
    collation: pair(r.coll_schema, r.coll_name),
    range:
      r.kind === 'r'
        ? {
            subtype: r.subtype,
            opclass: pair(r.opc_schema, r.opc_name),
            collation: pair(r.rcoll_schema, r.rcoll_name),
            canonical: r.canonical,
            subdiff: pair(r.diff_schema, r.diff_name),
            multirange: r.multi_oid ? { oid: r.multi_oid, arrayType: r.multi_array, name: r.multi_name } : null,
          }
        : null,
    owner: r.owner,
    acl: r.acl,
  }));
  const typeOids = types.map((t) => t.oid);

  const constraints: CatConstraint[] = (
    await rows(
      src,
      `SELECT co.oid, co.conname, co.contype, co.conrelid, co.contypid, co.conindid, co.confrelid,
              coalesce(co.conkey, '{}') AS conkey, coalesce(co.confkey, '{}') AS confkey, co.condeferrable, co.condeferred,
              co.convalidated, co.conislocal, co.connoinherit, co.conparentid, co.confupdtype, co.confdeltype, co.confmatchtype,
              ${v15 ? 'co.confdelsetcols' : 'NULL::int2[]'} AS confdelsetcols, pg_catalog.pg_get_constraintdef(co.oid) AS def
         FROM pg_catalog.pg_constraint co
        WHERE (co.conrelid = ANY($1) OR co.contypid = ANY($2)) AND co.contype IN ('c', 'f', 'p', 'u', 'x')
        ORDER BY co.conrelid, co.contypid, co.conname`,
      [relOids, typeOids],
    )
  ).map((r) => ({
    oid: r.oid,
    name: r.conname,
    type: r.contype,
    relid: r.conrelid,
    typid: r.contypid,
    indexOid: r.conindid,
    refRelid: r.confrelid,
    keys: r.conkey,
    refKeys: r.confkey,
    deferrable: r.condeferrable,
    deferred: r.condeferred,
    validated: r.convalidated,
    isLocal: r.conislocal,
    noInherit: r.connoinherit,
    parentOid: r.conparentid,
    updateAction: r.confupdtype,
    deleteAction: r.confdeltype,
    matchType: r.confmatchtype,
    deleteSetColumns: r.confdelsetcols,
    def: r.def,
  }));

  const indexes: CatIndex[] = (
    await rows(
      src,
      `SELECT i.indexrelid, i.indrelid, c.relname, c.relkind, i.indisunique, i.indisprimary, i.indisreplident, i.indisvalid,
              i.indpred IS NOT NULL AS partial, i.indexprs IS NOT NULL AS expressions, i.indnkeyatts, i.indkey::int2[] AS keys,
              ${v15 ? 'i.indnullsnotdistinct' : 'false'} AS nulls_not_distinct, c.reloptions,
              (SELECT co.oid FROM pg_catalog.pg_constraint co WHERE co.conindid = i.indexrelid AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x')) AS con,
              (SELECT h.inhparent FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid) AS parent_index,
              pg_catalog.pg_get_indexdef(i.indexrelid) AS def
         FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = ANY($1)
        ORDER BY i.indrelid, c.relname`,
      [tableOids],
    )
  ).map((r) => ({
    oid: r.indexrelid,
    relid: r.indrelid,
    name: r.relname,
    kind: r.relkind,
    unique: r.indisunique,
    primary: r.indisprimary,
    replIdent: r.indisreplident,
    valid: r.indisvalid,
    partial: r.partial,
    expressions: r.expressions,
    keyCount: r.indnkeyatts,
    keys: r.keys,
    nullsNotDistinct: r.nulls_not_distinct,
    options: r.reloptions,
    constraintOid: r.con,
    parentIndex: r.parent_index,
    def: r.def,
  }));

  const sequences = new Map<number, CatSequence>();
  for (const r of await rows(
    src,
    `SELECT s.seqrelid, pg_catalog.format_type(s.seqtypid, NULL) AS type, s.seqstart::text AS start, s.seqincrement::text AS inc,
            s.seqmin::text AS min, s.seqmax::text AS max, s.seqcache::text AS cache, s.seqcycle,
            d.refobjid AS owner_rel, d.refobjsubid AS owner_col, d.deptype AS owner_kind
       FROM pg_catalog.pg_sequence s
       LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = s.seqrelid
            AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
       JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1)`,
    [names],
  )) {
    sequences.set(r.seqrelid, {
      relid: r.seqrelid,
      type: r.type,
      start: r.start,
      increment: r.inc,
      min: r.min,
      max: r.max,
      cache: r.cache,
      cycle: r.seqcycle,
      owner: r.owner_rel ? { relid: r.owner_rel, column: r.owner_col, kind: r.owner_kind } : null,
    });
  }

  const functions: CatFunction[] = (
    await rows(
      src,
      `SELECT p.oid, n.nspname AS schema, p.proname AS name, p.prokind AS kind,
              CASE WHEN p.prokind <> 'a' THEN pg_catalog.pg_get_functiondef(p.oid) END AS def,
              pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
              ${v14 ? 'p.prosqlbody IS NOT NULL' : 'false'} AS atomic,
              pg_catalog.pg_get_userbyid(p.proowner) AS owner, p.proacl::text[] AS acl
         FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY($1) AND ${NOT_EXTENSION_MEMBER('pg_catalog.pg_proc', 'p.oid')}
          -- constructors the server makes for range types
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid AND d.deptype = 'i')
        ORDER BY n.nspname, p.proname, p.oid`,
      [names],
    )
  ).map((r) => ({
    oid: r.oid,
    schema: r.schema,
    name: r.name,
    kind: r.kind,
    def: r.def,
    identityArgs: r.args,
    atomicBody: r.atomic,
    owner: r.owner,
    acl: r.acl,
  }));

  const triggers: CatTrigger[] = (
    await rows(
      src,
      `SELECT t.oid, t.tgrelid, t.tgname, pg_catalog.pg_get_triggerdef(t.oid) AS def, t.tgenabled
         FROM pg_catalog.pg_trigger t
        WHERE t.tgrelid = ANY($1) AND NOT t.tgisinternal ${version >= 130000 ? 'AND t.tgparentid = 0' : ''}
        ORDER BY t.tgrelid, t.tgname`,
      [relOids],
    )
  ).map((r) => ({ oid: r.oid, relid: r.tgrelid, name: r.tgname, def: r.def, enabled: r.tgenabled }));

  const ruleRows = await rows(src, `SELECT r.oid, r.ev_class, r.rulename FROM pg_catalog.pg_rewrite r WHERE r.ev_class = ANY($1)`, [relOids]);
  const viewRules = new Map(ruleRows.filter((r) => r.rulename === '_RETURN').map((r) => [r.oid as number, r.ev_class as number]));
  const rules = ruleRows.filter((r) => r.rulename !== '_RETURN').map((r) => ({ oid: r.oid, relid: r.ev_class, name: r.rulename }));

  const collations: CatCollation[] = (
    await rows(
      src,
      `SELECT c.oid, n.nspname AS schema, c.collname AS name, c.collprovider AS provider,
              -- nondeterministic collations exist from 12 on
              coalesce((j->>'collisdeterministic')::boolean, true) AS deterministic,
              j->>'collcollate' AS collate, j->>'collctype' AS ctype, coalesce(j->>'colllocale', j->>'colliculocale') AS locale,
              pg_catalog.pg_get_userbyid(c.collowner) AS owner
         FROM pg_catalog.pg_collation c JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace,
              LATERAL pg_catalog.to_jsonb(c) AS j
        WHERE n.nspname = ANY($1) AND ${NOT_EXTENSION_MEMBER('pg_catalog.pg_collation', 'c.oid')}`,
      [names],
    )
  ).map((r) => ({ ...r }) as CatCollation);

  const statistics: CatStatistic[] = (
    await rows(
      src,
      `SELECT s.oid, n.nspname AS schema, s.stxname AS name, s.stxrelid AS relid, pg_catalog.pg_get_statisticsobjdef(s.oid) AS def
         FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
        WHERE s.stxrelid = ANY($1)`,
      [tableOids],
    )
  ).map((r) => ({ ...r }) as CatStatistic);

  const policies = (await rows(src, `SELECT p.polrelid AS relid, p.polname AS name FROM pg_catalog.pg_policy p WHERE p.polrelid = ANY($1)`, [tableOids])).map(
    (r) => ({ relid: r.relid as number, name: r.name as string }),
  );

  const FIRST_NORMAL_OID = 16384;
  const depends: CatDepend[] = (
    await rows(
      src,
      `SELECT d.classid::pg_catalog.regclass::text AS catalog, d.objid, d.objsubid, d.refclassid::pg_catalog.regclass::text AS ref_catalog,
              d.refobjid, d.refobjsubid, d.deptype
         FROM pg_catalog.pg_depend d
        WHERE d.objid >= ${FIRST_NORMAL_OID} AND d.refobjid >= ${FIRST_NORMAL_OID} AND d.deptype IN ('n', 'a')
          AND d.classid IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_type'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass,
                            'pg_catalog.pg_constraint'::pg_catalog.regclass, 'pg_catalog.pg_attrdef'::pg_catalog.regclass, 'pg_catalog.pg_rewrite'::pg_catalog.regclass,
                            'pg_catalog.pg_trigger'::pg_catalog.regclass, 'pg_catalog.pg_collation'::pg_catalog.regclass, 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass)`,
    )
  ).map((r) => ({
    catalog: r.catalog,
    oid: r.objid,
    sub: r.objsubid,
    refCatalog: r.ref_catalog,
    refOid: r.refobjid,
    refSub: r.refobjsubid,
    type: r.deptype,
  }));

  const comments: CatComment[] = (
    await rows(
      src,
      `SELECT d.classoid::pg_catalog.regclass::text AS catalog, d.objoid, d.objsubid, d.description
         FROM pg_catalog.pg_description d
        WHERE d.objoid >= ${FIRST_NORMAL_OID} OR d.objoid = ANY($1)`,
      [schemas.map((s) => s.oid)],
    )
  ).map((r) => ({ catalog: r.catalog, oid: r.objoid, sub: r.objsubid, text: r.description }));

  return {
    version,
    keywords,
    quotedKeywords,
    schemas,
    extensions,
    extensionMembers,
    extensionMemberNames,
    relations,
    excludedRelations,
    rowKeys,
    columns,
    constraints,
    indexes,
    sequences,
    types,
    functions,
    triggers,
    rules,
    viewRules,
    collations,
    statistics,
    policies,
    depends,
    comments,
  };
}
