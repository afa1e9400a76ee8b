// What a captured DDL entry (ddl-capture.ts) becomes on the
// destination. Pure: builds SQL text only; ddl-replay.ts runs it.
//
// How names map — decided here, once:
//  - A DDL that changes a table (ALTER TABLE in all its forms, CREATE INDEX,
//    CREATE TABLE) is never replayed from its text. The trigger recorded the
//    table's shape before and after it (columns by attnum, constraints and
//    indexes as pg_get_*def deparses them under an empty search_path); the
//    destination statements are derived from the difference, every name going
//    through the migration's name mapping (lib/name-mapping.ts) and every
//    expression through the schema migration's rewriter
//    (activities/schema/rewrite.ts). One query string with several statements
//    is no problem: each statement has its own entry and shapes.
//  - DROP of a table, view, sequence or index is derived from the dropped
//    object's name (mapped).
//  - Any other DDL (views, functions, types, sequences) is replayed from its
//    text, under the source session's search_path, only when no mapping applies
//    to the objects it touches and the query string holds that one statement;
//    otherwise it is reported and the apply stops there (`pgshift ddl skip`).
// What is not replayed is never silent: `report` (not replayed, going on does
// not diverge the data: tablespace, storage, owner…), `block` (going on would
// diverge, or the destination refused: the apply stops at the entry until the
// operator skips it).
import { ident, qualified, type TableName } from '../../lib/ident';
import type { NameMapper } from '../../lib/name-mapping';
import { rewriteSql, type NameScope, type RelationNames } from '../schema/rewrite';
import { indexUsingOffset, lex } from '../schema/sqltext';

export interface ShapeColumn {
  num: number;
  name: string;
  type: string;
  notnull: boolean;
  default: string | null;
  identity: string;
  generated: string;
  collation: string | null;
}
export interface ShapeConstraint {
  name: string;
  type: string;
  def: string;
  deferrable: boolean;
  columns: string[] | null;
}
export interface ShapeIndex {
  name: string;
  def: string;
  unique: boolean;
  constraint: boolean;
}
export interface TableShape {
  oid: number;
  schema: string;
  name: string;
  kind: string;
  partition: boolean;
  replident: string;
  columns: ShapeColumn[];
  constraints: ShapeConstraint[];
  indexes: ShapeIndex[];
}
export interface DdlObject {
  classid: string;
  objid: number;
  subid: number;
  type: string;
  schema: string | null;
  identity: string;
  tag?: string;
  name?: string;
  original?: boolean;
  inExtension?: boolean;
}
export interface DdlEntry {
  id: number;
  event: string;
  tag: string;
  statement: string | null;
  objects: DdlObject[];
  relations: { relid: number; before: TableShape | null; after: TableShape | null }[];
  role: string;
  replica: boolean;
  searchPath: string | null;
  problems: string[];
}

export type TableChange = { op: 'upsert'; before: TableShape | null; shape: TableShape } | { op: 'drop'; schema: string; name: string };

export type DdlPlan =
  | { kind: 'ignore'; why: string }
  | { kind: 'replay'; statements: string[]; tables: TableChange[]; notes: string[]; text?: boolean }
  | { kind: 'report'; why: string }
  | { kind: 'block'; why: string };

export interface PlanContext {
  map: NameMapper;
  /** The selection takes this table (schema selected, include/exclude). */
  selects(schema: string, table: string): boolean;
  selectedSchemas: Set<string>;
  /** Destination column names of a known table (other tables' foreign keys are rewritten through them). */
  relation(schema: string, name: string): RelationNames | undefined;
  keywords: Set<string>;
}

const q = (t: TableName) => qualified(t.schema, t.table);

class Blocked extends Error {}

/** The number of statements in a query string (comments and blanks aside). */
export function statementCount(sql: string): number {
  let n = 0;
  let open = false;
  for (const t of lex(sql)) {
    if (t.type === 'space' || t.type === 'comment') continue;
    if (t.type === 'op' && t.text === ';') {
      open = false;
      continue;
    }
    if (!open) n++;
    open = true;
  }
  return n;
}

/** Source column → destination column of a shape (the mapping keyed by the table's name in that shape). */
function relationNames(ctx: PlanContext, s: TableShape, columnsFrom?: TableShape): RelationNames {
  const names = columnsFrom ?? s;
  const byNum = new Map(names.columns.map((c) => [c.num, c]));
  return {
    schema: s.schema,
    name: s.name,
    target: ctx.map.table(names.schema, names.name),
    columns: new Map(s.columns.map((c) => [c.name, ctx.map.column(names.schema, names.name, byNum.get(c.num)?.name ?? c.name)])),
  };
}

function scopeFor(ctx: PlanContext, own: RelationNames[]): NameScope {
  return {
    schemas: new Map([...ctx.selectedSchemas].map((s) => [s, ctx.map.schema(s)])),
    relation: (schema, name) => own.find((r) => r.schema === schema && r.name === name) ?? ctx.relation(schema, name),
    object: (schema, name) => ctx.map.object(schema, name),
    keywords: ctx.keywords,
  };
}

function rewrite(ctx: PlanContext, scope: NameScope, text: string, what: string, relation?: RelationNames): string {
  const r = rewriteSql(text, scope, relation ? { relation } : {});
  if (!r.ok) throw new Blocked(`${what}: ${r.why}`);
  return r.sql;
}

function columnSql(ctx: PlanContext, scope: NameScope, rel: RelationNames, c: ShapeColumn): string {
  let sql = `${ident(rel.columns.get(c.name)!)} ${rewrite(ctx, scope, c.type, `type of ${c.name}`)}`;
  if (c.collation) sql += ` COLLATE ${c.collation}`;
  if (c.generated === 's') sql += ` GENERATED ALWAYS AS (${rewrite(ctx, scope, c.default!, `generated column ${c.name}`, rel)}) STORED`;
  else if (c.identity) sql += ` GENERATED ${c.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY`;
  else if (c.default !== null) sql += ` DEFAULT ${rewrite(ctx, scope, c.default, `default of ${c.name}`, rel)}`;
  if (c.notnull && !c.identity) sql += ' NOT NULL';
  return sql;
}

function indexSql(ctx: PlanContext, scope: NameScope, rel: RelationNames, i: ShapeIndex): string {
  const at = indexUsingOffset(i.def);
  if (at < 0) throw new Blocked(`unexpected index definition: ${i.def}`);
  const tail = rewrite(ctx, scope, i.def.slice(at), `index ${i.name}`, rel);
  return `CREATE ${i.unique ? 'UNIQUE ' : ''}INDEX ${ident(ctx.map.plain(i.name))} ON ${q(rel.target)} ${tail}`;
}

/** CREATE TABLE of a new table: columns, constraints (foreign keys last), then its other indexes. */
function createTable(ctx: PlanContext, s: TableShape, sequences: TableName[]): string[] {
  const rel = relationNames(ctx, s);
  const scope = scopeFor(ctx, [rel]);
  const out = sequences.map((seq) => `CREATE SEQUENCE IF NOT EXISTS ${q(seq)}`);
  const parts = s.columns.map((c) => columnSql(ctx, scope, rel, c));
  const cons = [...s.constraints].sort((a, b) => Number(a.type === 'f') - Number(b.type === 'f'));
  for (const c of cons) parts.push(`CONSTRAINT ${ident(ctx.map.plain(c.name))} ${rewrite(ctx, scope, c.def, `constraint ${c.name}`, rel)}`);
  out.push(`CREATE TABLE ${q(rel.target)} (${parts.join(', ')})`);
  for (const i of s.indexes.filter((x) => !x.constraint)) out.push(indexSql(ctx, scope, rel, i));
  // Without a primary key the trigger made it REPLICA IDENTITY FULL on the source (as the seed advises): the same here.
  if (s.replident === 'f' || !s.constraints.some((c) => c.type === 'p')) out.push(`ALTER TABLE ${q(rel.target)} REPLICA IDENTITY FULL`);
  return out;
}

/** The destination statements that take a table from shape `b` to shape `a` (same table, by attnum / name). */
export function diffTable(ctx: PlanContext, b: TableShape, a: TableShape): string[] {
  if (b.schema !== a.schema) throw new Blocked(`${b.schema}.${b.name} moved to schema ${a.schema} (ALTER TABLE … SET SCHEMA is not replayed)`);
  const tb = ctx.map.table(b.schema, b.name);
  const ta = ctx.map.table(a.schema, a.name);
  const out: string[] = [];
  if (b.name !== a.name) {
    const defaultOld = ctx.map.object(b.schema, b.name);
    const explicitOld = tb.schema !== defaultOld.schema || tb.table !== defaultOld.table;
    const defaultNew = ctx.map.object(a.schema, a.name);
    const explicitNew = ta.schema !== defaultNew.schema || ta.table !== defaultNew.table;
    if (explicitOld && !explicitNew) {
      throw new Blocked(
        `${b.schema}.${b.name} is renamed explicitly to ${tb.schema}.${tb.table} by objects.rename.tables, and has been renamed to ${a.name} on the source: ` +
          `the plan has no destination name for ${a.schema}.${a.name} (add it to objects.rename.tables and rename the table on the destination by hand)`,
      );
    }
    if (ta.schema !== tb.schema) throw new Blocked(`renaming ${a.schema}.${a.name} would move it to schema ${ta.schema} on the destination`);
    if (ta.table !== tb.table) out.push(`ALTER TABLE ${q(tb)} RENAME TO ${ident(ta.table)}`);
  }
  const t = q(ta);
  const relA = relationNames(ctx, a);
  // Before-shape names, each mapped to the destination name its column (same attnum) has after the DDL: an unchanged definition renders the same.
  const relBasA = relationNames(ctx, b, a);
  const relB = relationNames(ctx, b);
  const scopeA = scopeFor(ctx, [relA]);
  const scopeB = scopeFor(ctx, [relBasA]);
  const before = new Map(b.columns.map((c) => [c.num, c]));
  const after = new Map(a.columns.map((c) => [c.num, c]));
  // Renamed columns first (the rest names them by their new names).
  for (const [num, cb] of before) {
    const ca = after.get(num);
    if (!ca) continue;
    const from = relB.columns.get(cb.name)!;
    const to = relA.columns.get(ca.name)!;
    if (from !== to) out.push(`ALTER TABLE ${t} RENAME COLUMN ${ident(from)} TO ${ident(to)}`);
  }
  // Constraints and indexes that went away or changed: dropped before the columns change under them.
  const renderCon = (scope: NameScope, rel: RelationNames, c: ShapeConstraint) => rewrite(ctx, scope, c.def, `constraint ${c.name}`, rel);
  const consA = new Map(a.constraints.map((c) => [c.name, c]));
  const consB = new Map(b.constraints.map((c) => [c.name, c]));
  const changedCon = new Set<string>();
  for (const [name, cb] of consB) {
    const ca = consA.get(name);
    if (!ca || ca.type !== cb.type || renderCon(scopeB, relBasA, cb) !== renderCon(scopeA, relA, ca)) {
      changedCon.add(name);
      out.push(`ALTER TABLE ${t} DROP CONSTRAINT IF EXISTS ${ident(ctx.map.plain(name))}`);
    }
  }
  const tail = (scope: NameScope, rel: RelationNames, i: ShapeIndex) =>
    `${i.unique}${rewrite(ctx, scope, i.def.slice(indexUsingOffset(i.def)), `index ${i.name}`, rel)}`;
  const idxA = new Map(a.indexes.filter((i) => !i.constraint).map((i) => [i.name, i]));
  const idxB = new Map(b.indexes.filter((i) => !i.constraint).map((i) => [i.name, i]));
  const changedIdx = new Set<string>();
  for (const [name, ib] of idxB) {
    const ia = idxA.get(name);
    if (!ia || tail(scopeB, relBasA, ib) !== tail(scopeA, relA, ia)) {
      changedIdx.add(name);
      out.push(`DROP INDEX IF EXISTS ${q(ctx.map.object(a.schema, name))}`);
    }
  }
  for (const [num, cb] of before) {
    if (!after.has(num)) out.push(`ALTER TABLE ${t} DROP COLUMN IF EXISTS ${ident(relB.columns.get(cb.name)!)}`);
  }
  for (const [num, ca] of after) {
    const cb = before.get(num);
    const col = ident(relA.columns.get(ca.name)!);
    if (!cb) {
      out.push(`ALTER TABLE ${t} ADD COLUMN ${columnSql(ctx, scopeA, relA, ca)}`);
      continue;
    }
    if (cb.identity !== ca.identity || cb.generated !== ca.generated) throw new Blocked(`identity or generation of column ${a.name}.${ca.name} changed`);
    const typeB = rewrite(ctx, scopeB, cb.type, `type of ${cb.name}`);
    const typeA = rewrite(ctx, scopeA, ca.type, `type of ${ca.name}`);
    if (typeB !== typeA || cb.collation !== ca.collation) {
      out.push(`ALTER TABLE ${t} ALTER COLUMN ${col} TYPE ${typeA}${ca.collation ? ` COLLATE ${ca.collation}` : ''}`);
    }
    if (ca.generated) continue;
    const defB = cb.default === null ? null : rewrite(ctx, scopeB, cb.default, `default of ${cb.name}`, relBasA);
    const defA = ca.default === null ? null : rewrite(ctx, scopeA, ca.default, `default of ${ca.name}`, relA);
    if (defB !== defA)
      out.push(defA === null ? `ALTER TABLE ${t} ALTER COLUMN ${col} DROP DEFAULT` : `ALTER TABLE ${t} ALTER COLUMN ${col} SET DEFAULT ${defA}`);
    if (cb.notnull !== ca.notnull && !ca.identity) out.push(`ALTER TABLE ${t} ALTER COLUMN ${col} ${ca.notnull ? 'SET' : 'DROP'} NOT NULL`);
  }
  // New and changed constraints (foreign keys last), then indexes.
  const added = [...consA.values()].filter((c) => !consB.has(c.name) || changedCon.has(c.name));
  added.sort((x, y) => Number(x.type === 'f') - Number(y.type === 'f'));
  for (const c of added) out.push(`ALTER TABLE ${t} ADD CONSTRAINT ${ident(ctx.map.plain(c.name))} ${renderCon(scopeA, relA, c)}`);
  for (const i of idxA.values()) if (!idxB.has(i.name) || changedIdx.has(i.name)) out.push(indexSql(ctx, scopeA, relA, i));
  return out;
}

/** No mapping changes these objects' names: their DDL text means the same on the destination. */
function unmapped(ctx: PlanContext, objects: DdlObject[]): boolean {
  return objects.every((o) => {
    if (!o.schema) return true;
    if (ctx.map.schema(o.schema) !== o.schema) return false;
    return ctx.map.plain(o.identity) === o.identity;
  });
}

const DROPPABLE: Record<string, string> = {
  table: 'TABLE',
  view: 'VIEW',
  'materialized view': 'MATERIALIZED VIEW',
  sequence: 'SEQUENCE',
  index: 'INDEX',
};

function dropPlan(ctx: PlanContext, e: DdlEntry): DdlPlan {
  const statements: string[] = [];
  const tables: TableChange[] = [];
  const byIdentity: DdlObject[] = [];
  for (const o of e.objects) {
    if (!o.schema || !o.name) continue;
    const kind = DROPPABLE[o.type];
    if (o.type === 'table') {
      if (!o.original || !ctx.selects(o.schema, o.name)) continue;
      statements.push(`DROP TABLE IF EXISTS ${q(ctx.map.table(o.schema, o.name))}`);
      tables.push({ op: 'drop', schema: o.schema, name: o.name });
    } else if (kind && (o.original || o.type === 'view' || o.type === 'materialized view' || o.type === 'sequence')) {
      statements.push(`DROP ${kind} IF EXISTS ${q(ctx.map.object(o.schema, o.name))}`);
    } else if (o.original && ['function', 'procedure', 'type', 'aggregate', 'domain'].includes(o.type)) {
      byIdentity.push(o);
    }
  }
  if (byIdentity.length) {
    if (!unmapped(ctx, byIdentity)) return { kind: 'block', why: `drops ${byIdentity.map((o) => o.identity).join(', ')}, which a name mapping applies to` };
    for (const o of byIdentity) statements.push(`DROP ${o.type.toUpperCase()} IF EXISTS ${o.identity}`);
  }
  if (!statements.length) return { kind: 'ignore', why: 'drops nothing of the selection' };
  return { kind: 'replay', statements, tables, notes: [] };
}

/** The plan of one entry. */
export function planDdl(ctx: PlanContext, e: DdlEntry): DdlPlan {
  const failed = e.problems.filter((p) => !p.startsWith('warning: '));
  const notes = e.problems.filter((p) => p.startsWith('warning: ')).map((p) => p.slice('warning: '.length));
  if (failed.length) return { kind: 'block', why: failed.join('; ') };
  if (e.replica) return { kind: 'report', why: 'ran with session_replication_role = replica: not replayed (as the seed does); the destination may now differ' };
  if (e.objects.length && e.objects.every((o) => o.inExtension)) return { kind: 'ignore', why: 'extension member objects' };
  try {
    if (e.event === 'sql_drop') return dropPlan(ctx, e);
    const statements: string[] = [];
    const tables: TableChange[] = [];
    let touched = false;
    for (const r of e.relations) {
      const a = r.after;
      if (!a) continue;
      const b = r.before;
      const selected = ctx.selects(a.schema, a.name) || (!!b && ctx.selects(b.schema, b.name));
      if (!selected) continue;
      touched = true;
      if (b && !ctx.selects(a.schema, a.name)) throw new Blocked(`${b.schema}.${b.name} became ${a.schema}.${a.name}, which the selection excludes`);
      if (a.kind === 'p' || a.partition) throw new Blocked(`${a.schema}.${a.name} is partitioned or a partition: its DDL is not replayed`);
      if (!b) {
        if (e.tag === 'CREATE TABLE AS' || e.tag === 'SELECT INTO') {
          throw new Blocked(
            `${e.tag} ${a.schema}.${a.name}: the rows it was created with are not in the stream (create and fill it on the destination by hand)`,
          );
        }
        if (e.tag !== 'CREATE TABLE')
          throw new Blocked(`no earlier shape of ${a.schema}.${a.name} was recorded (was it created during the schema migration or full load?)`);
        const sequences = e.objects
          .filter((o) => o.type === 'sequence' && o.tag === 'CREATE TABLE' && o.schema)
          .map((o) => ctx.map.object(o.schema!, o.identity.slice(o.identity.lastIndexOf('.') + 1).replace(/^"|"$/g, '')));
        statements.push(...createTable(ctx, a, sequences));
      } else {
        statements.push(...diffTable(ctx, b, a));
      }
      tables.push({ op: 'upsert', before: b, shape: a });
    }
    const others = e.objects.filter((o) => !(o.classid === 'pg_class' && ['table', 'index', 'table column'].includes(o.type)) && o.classid !== 'pg_constraint');
    const othersOwn = others.filter(
      (o) => !(e.tag === 'CREATE TABLE' && (o.type === 'sequence' || o.type === 'type')) && !(o.type === 'sequence' && o.tag === 'ALTER SEQUENCE' && touched),
    );
    if (touched && !othersOwn.length) {
      if (!statements.length) {
        return {
          kind: 'report',
          why: `${e.tag} changes nothing pgshift replays (columns, constraints, indexes, names): not replayed (tablespace, storage, owner, statistics, triggers, replica identity…)`,
        };
      }
      return { kind: 'replay', statements, tables, notes };
    }
    if (!othersOwn.length) return { kind: 'ignore', why: 'touches nothing of the selection' };
    if (touched) return { kind: 'block', why: `${e.tag} changes a table and other objects (${othersOwn.map((o) => o.identity).join(', ')}) at once` };
    // Views, functions, types, sequences: the text itself.
    if (!e.statement) return { kind: 'block', why: 'no statement text was captured' };
    if (statementCount(e.statement) !== 1)
      return { kind: 'block', why: 'the query string holds several statements: this one cannot be told apart to replay it' };
    if (!unmapped(ctx, othersOwn)) {
      return { kind: 'block', why: `names ${othersOwn.map((o) => o.identity).join(', ')}, which a name mapping applies to: pgshift does not rewrite DDL text` };
    }
    return { kind: 'replay', statements: [e.statement], tables: [], notes, text: true };
  } catch (err) {
    if (err instanceof Blocked) return { kind: 'block', why: err.message };
    throw err;
  }
}
