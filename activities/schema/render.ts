// DDL text for the selected source objects, with destination names. Text the
// server deparsed (defaults, CHECKs, view queries, index expressions, function
// and trigger definitions) goes through rewriteSql; key and FK column lists are
// built from the catalog's column numbers. Objects that cannot be rendered
// safely are left out with a warning, never emitted wrong.
import type { Config } from '../../lib/config';
import { ident, literal, qualified, type TableName } from '../../lib/ident';
import type { SchemaStage } from '../../lib/migration-state';
import { aclStatements } from './acl';
import {
  dependencyMap,
  migratedReplicaIdentities,
  objKey,
  type CatCollation,
  type CatColumn,
  type CatConstraint,
  type CatFunction,
  type CatIndex,
  type CatRelation,
  type CatSchema,
  type CatSequence,
  type CatStatistic,
  type CatTrigger,
  type CatType,
  type SourceCatalog,
} from './read';
import { rewriteSql, type RelationNames, type RewriteOptions } from './rewrite';
import { display, displayOn, type SchemaNames } from './scope';
import { indexUsingOffset, lex, mentionsName } from './sqltext';
import type { Statement } from './statement';

export interface Rendered {
  statements: Statement[];
  warnings: string[];
  /** Objects of the selected schemas that are not created, with why (their dependents are dropped too). */
  excluded: Map<string, string>;
}

const q = (t: TableName) => qualified(t.schema, t.table);
const K = {
  cls: (oid: number) => objKey('pg_class', oid),
  type: (oid: number) => objKey('pg_type', oid),
  proc: (oid: number) => objKey('pg_proc', oid),
  con: (oid: number) => objKey('pg_constraint', oid),
  def: (oid: number) => objKey('pg_attrdef', oid),
  nsp: (oid: number) => objKey('pg_namespace', oid),
  trg: (oid: number) => objKey('pg_trigger', oid),
  rule: (oid: number) => objKey('pg_rewrite', oid),
};

const FK_ACTIONS: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' };

interface TableParts {
  r: CatRelation;
  n: RelationNames;
  parent: CatRelation | undefined;
  checks: CatConstraint[];
  columns: CatColumn[];
}

interface Renamed {
  from: string;
  to: string;
  /** For a column: the (source) name of its relation. */
  relation?: string;
}

const byOid = <T extends { oid: number }>(items: T[]) => new Map(items.map((x) => [x.oid, x]));

function groupBy<T>(items: T[], key: (x: T) => number): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const x of items) {
    const list = out.get(key(x));
    if (list) list.push(x);
    else out.set(key(x), [x]);
  }
  return out;
}

class Renderer {
  readonly statements: Statement[] = [];
  readonly warnings: string[] = [];
  readonly excluded = new Map<string, string>();
  private readonly rels: Map<number, CatRelation>;
  private readonly depsOf: Map<string, string[]>;
  // Lookups by oid / owner: catalogs of large databases hold tens of thousands of rows.
  private readonly index: {
    schemas: Map<number, CatSchema>;
    types: Map<number, CatType>;
    functions: Map<number, CatFunction>;
    constraints: Map<number, CatConstraint>;
    indexes: Map<number, CatIndex>;
    triggers: Map<number, CatTrigger>;
    collations: Map<number, CatCollation>;
    statistics: Map<number, CatStatistic>;
    /** Constraints by table (conrelid) or domain (contypid). */
    constraintsOf: Map<number, CatConstraint[]>;
    /** Identity sequences by table. */
    identityOf: Map<number, CatSequence[]>;
    indexesOf: Map<number, CatIndex[]>;
    /** View / materialized view → its _RETURN rule. */
    ruleOf: Map<number, number>;
  };

  constructor(
    private readonly cat: SourceCatalog,
    private readonly names: SchemaNames,
    private readonly config: Config,
  ) {
    this.rels = byOid(cat.relations);
    this.index = {
      schemas: byOid(cat.schemas),
      types: byOid(cat.types),
      functions: byOid(cat.functions),
      constraints: byOid(cat.constraints),
      indexes: byOid(cat.indexes),
      triggers: byOid(cat.triggers),
      collations: byOid(cat.collations),
      statistics: byOid(cat.statistics),
      constraintsOf: groupBy(cat.constraints, (c) => c.relid || c.typid),
      identityOf: groupBy(
        [...cat.sequences.values()].filter((q) => q.owner?.kind === 'i'),
        (q) => q.owner!.relid,
      ),
      indexesOf: groupBy(cat.indexes, (i) => i.relid),
      ruleOf: new Map([...cat.viewRules].map(([rule, view]) => [view, rule])),
    };
    this.depsOf = dependencyMap(cat);
  }

  private add(s: Omit<Statement, 'after'> & { after?: string[] }) {
    this.statements.push({ ...s, after: s.after ?? [] });
  }

  /**
   * Leave an object out. `warning` reports it (once); its dependents are
   * dropped and reported as depending on "`object` (`why`)".
   */
  private leaveOut(key: string, object: string, why: string, warning?: string) {
    this.excluded.set(key, `${object} (${why})`);
    if (warning) this.warnings.push(warning);
  }

  private rel(oid: number): RelationNames {
    return this.names.relationById(oid)!;
  }

  private rewrite(text: string, what: string, opts: RewriteOptions = {}): string | null {
    const r = rewriteSql(text, this.names, opts);
    if (r.ok) return r.sql;
    this.warnings.push(`${what} not created: ${r.why}; it cannot be rewritten safely for the renamed objects, create it by hand`);
    return null;
  }

  private collation(c: [string, string] | null): string {
    if (!c) return '';
    const schema = this.names.schemas.get(c[0]);
    return ` COLLATE ${schema !== undefined ? q(this.names.object(c[0], c[1])) : qualified(c[0], c[1])}`;
  }

  private objectName(schema: string, name: string): TableName {
    return this.names.schemas.has(schema) ? this.names.object(schema, name) : { schema, table: name };
  }

  render(): Rendered {
    this.schemas();
    this.extensions();
    this.collations();
    this.types();
    this.functions();
    this.sequences();
    for (const r of this.cat.relations) this.relation(r);
    for (const r of this.cat.excludedRelations) this.excludedRelation(r);
    this.keysAndIndexes();
    this.triggers();
    this.statisticsObjects();
    this.unsupported();
    this.comments();
    return { statements: this.statements, warnings: this.warnings, excluded: this.excluded };
  }

  private ownership(kind: string, target: string, owns: string, owner: string, acl: string[] | null) {
    if (!this.config.objects.ownership) return;
    this.add({ stage: 'post-data', kind: 'owner', object: target, sql: `ALTER ${kind} ${target} OWNER TO ${ident(owner)}`, owns: [], after: [owns] });
    const grants = aclStatements(kind, target, owner, acl);
    if (grants) this.add({ stage: 'post-data', kind: 'grant', object: target, sql: grants, owns: [], after: [owns] });
  }

  private schemas() {
    for (const s of this.cat.schemas) {
      const target = this.names.map.schema(s.name);
      this.add({ stage: 'before-data', kind: 'schema', object: ident(target), sql: `CREATE SCHEMA IF NOT EXISTS ${ident(target)}`, owns: [K.nsp(s.oid)] });
      this.ownership('SCHEMA', ident(target), K.nsp(s.oid), s.owner, s.acl);
    }
  }

  private extensions() {
    const selected = new Map(this.cat.schemas.map((s) => [s.name, s]));
    for (const e of this.cat.extensions) {
      const inSelection = selected.get(e.schema);
      const schema = inSelection ? this.names.map.schema(e.schema) : e.schema;
      this.add({
        stage: 'before-data',
        kind: 'extension',
        object: e.name,
        sql: `CREATE EXTENSION IF NOT EXISTS ${ident(e.name)} WITH SCHEMA ${ident(schema)}`,
        owns: [objKey('pg_extension', e.oid)],
        after: inSelection ? [K.nsp(inSelection.oid)] : [],
        optional: !inSelection,
      });
    }
  }

  private collations() {
    for (const c of this.cat.collations) {
      const t = this.names.object(c.schema, c.name);
      const provider = c.provider === 'i' ? 'icu' : c.provider === 'b' ? 'builtin' : 'libc';
      const opts = [`provider = ${provider}`];
      if (c.provider === 'c' || (c.provider === 'd' && c.collate)) {
        opts.push(`lc_collate = ${literal(c.collate ?? '')}`, `lc_ctype = ${literal(c.ctype ?? '')}`);
      } else opts.push(`locale = ${literal(c.locale ?? '')}`);
      if (!c.deterministic) opts.push('deterministic = false');
      this.add({
        stage: 'before-data',
        kind: 'collation',
        object: display(t),
        sql: `CREATE COLLATION ${q(t)} (${opts.join(', ')})`,
        owns: [objKey('pg_collation', c.oid)],
      });
    }
  }

  private types() {
    for (const t of this.cat.types) {
      const target = this.names.object(t.schema, t.name);
      const what = `type ${display(target)}`;
      const sql = t.kind === 'e' ? this.enumType(t, target) : t.kind === 'd' ? this.domainType(t, target, what) : this.rangeType(t, target, what);
      if (sql === null) {
        this.leaveOut(K.type(t.oid), what, 'not created');
        continue;
      }
      const kind = t.kind === 'e' ? 'enum' : t.kind === 'd' ? 'domain' : 'range';
      const constraints = this.index.constraintsOf.get(t.oid) ?? [];
      const owns = [K.type(t.oid), ...constraints.filter((c) => c.validated).map((c) => K.con(c.oid))];
      this.add({ stage: 'before-data', kind, object: display(target), sql, owns });
      for (const c of constraints.filter((c) => !c.validated)) {
        const def = this.rewrite(c.def, `constraint ${c.name} of ${what}`);
        if (def === null) continue;
        this.add({
          stage: 'before-data',
          kind: 'check',
          object: displayOn(this.names.map.plain(c.name), target),
          sql: `ALTER DOMAIN ${q(target)} ADD CONSTRAINT ${ident(this.names.map.plain(c.name))} ${def}`,
          owns: [K.con(c.oid)],
          after: [K.type(t.oid)],
        });
      }
      this.ownership(t.kind === 'd' ? 'DOMAIN' : 'TYPE', q(target), K.type(t.oid), t.owner, t.acl);
    }
  }

  private enumType(t: CatType, target: TableName): string {
    return `CREATE TYPE ${q(target)} AS ENUM (${(t.labels ?? []).map(literal).join(', ')})`;
  }

  private domainType(t: CatType, target: TableName, what: string): string | null {
    const base = this.rewrite(t.baseType!, what);
    if (base === null) return null;
    let sql = `CREATE DOMAIN ${q(target)} AS ${base}${this.collation(t.collation)}`;
    if (t.defaultExpr !== null) {
      const def = this.rewrite(t.defaultExpr, what);
      if (def === null) return null;
      sql += ` DEFAULT ${def}`;
    }
    if (t.notNull) sql += ' NOT NULL';
    for (const c of (this.index.constraintsOf.get(t.oid) ?? []).filter((c) => c.validated)) {
      const def = this.rewrite(c.def, what);
      if (def === null) return null;
      sql += ` CONSTRAINT ${ident(this.names.map.plain(c.name))} ${def}`;
    }
    return sql;
  }

  private rangeType(t: CatType, target: TableName, what: string): string | null {
    const r = t.range!;
    if (r.canonical) {
      this.warnings.push(`${what} not created: its canonical function ${r.canonical} needs a shell type and a C function; create it by hand`);
      return null;
    }
    const subtype = this.rewrite(r.subtype, what);
    if (subtype === null) return null;
    const opts = [`SUBTYPE = ${subtype}`];
    if (r.opclass) opts.push(`SUBTYPE_OPCLASS = ${q(this.objectName(...r.opclass))}`);
    if (r.collation) opts.push(`COLLATION = ${this.collation(r.collation).replace(' COLLATE ', '')}`);
    if (r.subdiff) opts.push(`SUBTYPE_DIFF = ${q(this.objectName(...r.subdiff))}`);
    if (r.multirange) opts.push(`MULTIRANGE_TYPE_NAME = ${q(this.names.object(t.schema, r.multirange.name))}`);
    return `CREATE TYPE ${q(target)} AS RANGE (${opts.join(', ')})`;
  }

  private functions() {
    const renamed = this.renamedNames();
    for (const f of this.cat.functions) {
      const target = this.names.object(f.schema, f.name);
      const what = `${f.kind === 'p' ? 'procedure' : 'function'} ${display(target)}(${f.identityArgs})`;
      if (f.kind === 'a' || f.def === null) {
        const agg = `aggregate ${display(target)}(${f.identityArgs})`;
        this.leaveOut(K.proc(f.oid), agg, 'not migrated', `${agg} not created: aggregates are not migrated, create it by hand`);
        continue;
      }
      // Plain CREATE: each statement runs once anyway, and a function already on the destination must
      // count as existing (or fail under precheck-error) rather than be silently replaced.
      const def = this.rewrite(f.def.replace(/^CREATE OR REPLACE /, 'CREATE '), what);
      if (def === null) {
        this.leaveOut(K.proc(f.oid), what, 'not created');
        continue;
      }
      if (!f.atomicBody) this.bodyMentions(f, what, renamed);
      this.add({
        stage: 'before-data',
        kind: f.kind === 'p' ? 'procedure' : 'function',
        object: `${display(target)}(${f.identityArgs})`,
        sql: def,
        owns: [K.proc(f.oid)],
      });
      const args = this.rewrite(f.identityArgs, what) ?? f.identityArgs;
      this.ownership(f.kind === 'p' ? 'PROCEDURE' : 'FUNCTION', `${q(target)}(${args})`, K.proc(f.oid), f.owner, f.acl);
    }
  }

  /** Source names that change on the destination, for reporting opaque function bodies. */
  private renamedNames(): Renamed[] {
    const out: Renamed[] = [];
    for (const [from, to] of this.names.schemas) if (from !== to) out.push({ from, to });
    for (const r of this.cat.relations) {
      const n = this.rel(r.oid);
      if (n.target.table !== n.name) out.push({ from: n.name, to: n.target.table });
      for (const [from, to] of n.columns) if (from !== to) out.push({ from, to, relation: n.name });
    }
    return out;
  }

  /**
   * The body and SET clauses are strings to us, not rewritten: report the renamed
   * schemas and relations they mention, and renamed columns of relations they mention.
   */
  private bodyMentions(f: CatFunction, what: string, renamed: Renamed[]) {
    const opaque = lex(f.def!)
      .filter((t) => t.type === 'string' || t.type === 'dollar')
      .map((t) => t.text)
      .join('\n');
    // A keyword used as a name is always quoted: unquoted, it is the keyword.
    const mentions = (name: string) => mentionsName(opaque, name, !this.cat.quotedKeywords.has(name));
    const hits = [...new Set(renamed.filter((r) => mentions(r.from) && (!r.relation || mentions(r.relation))).map((h) => `${h.from} (now ${h.to})`))];
    if (hits.length) this.warnings.push(`${what}: its body mentions renamed ${hits.join(', ')}; the body is copied unchanged, review it`);
  }

  private sequences() {
    for (const [oid, s] of this.cat.sequences) {
      const r = this.rels.get(oid);
      if (!r || s.owner?.kind === 'i') continue; // identity sequences come with their column
      const owner = s.owner && this.rels.get(s.owner.relid);
      if (s.owner && !owner) {
        this.leaveOut(K.cls(oid), `sequence ${display(this.rel(oid).target)}`, 'its table is not migrated');
        continue;
      }
      const target = this.rel(oid).target;
      this.add({
        stage: 'before-data',
        kind: 'sequence',
        object: display(target),
        sql: `CREATE SEQUENCE ${q(target)} ${this.sequenceOptions(oid, true)}`,
        owns: [K.cls(oid)],
      });
      if (s.owner && owner) {
        const t = this.rel(owner.oid);
        const col = (this.cat.columns.get(owner.oid) ?? []).find((c) => c.num === s.owner!.column)!;
        this.add({
          stage: 'post-data',
          kind: 'sequence-owned-by',
          object: display(target),
          sql: `ALTER SEQUENCE ${q(target)} OWNED BY ${q(t.target)}.${ident(t.columns.get(col.name)!)}`,
          owns: [],
          after: [K.cls(oid), K.cls(owner.oid)],
        });
      }
      this.ownership('SEQUENCE', q(target), K.cls(oid), r.owner, r.acl);
    }
  }

  private sequenceOptions(oid: number, withType: boolean): string {
    const s = this.cat.sequences.get(oid)!;
    return [
      withType ? `AS ${s.type}` : '',
      `INCREMENT BY ${s.increment} MINVALUE ${s.min} MAXVALUE ${s.max} START WITH ${s.start} CACHE ${s.cache} ${s.cycle ? 'CYCLE' : 'NO CYCLE'}`,
    ]
      .filter(Boolean)
      .join(' ');
  }

  private relation(r: CatRelation) {
    switch (r.kind) {
      case 'r':
      case 'p':
        return this.table(r);
      case 'v':
      case 'm':
        return this.view(r);
      case 'c':
        return this.compositeType(r);
      case 'f':
        return this.leaveOut(
          K.cls(r.oid),
          `foreign table ${display(this.rel(r.oid).target)}`,
          'not migrated',
          `foreign table ${display(this.rel(r.oid).target)} not created: foreign tables are not migrated`,
        );
    }
  }

  private excludedRelation(r: CatRelation) {
    const what = `table ${display({ schema: r.schema, table: r.name })}`;
    this.leaveOut(K.cls(r.oid), what, 'excluded');
    this.leaveOut(K.type(r.rowType), what, 'excluded');
  }

  private columnsOf(oid: number): CatColumn[] {
    return this.cat.columns.get(oid) ?? [];
  }

  private compositeType(r: CatRelation) {
    const n = this.rel(r.oid);
    const what = `type ${display(n.target)}`;
    const attrs: string[] = [];
    for (const c of this.columnsOf(r.oid)) {
      const type = this.rewrite(c.type, what);
      if (type === null) return this.leaveOut(K.cls(r.oid), what, 'not created');
      attrs.push(`${ident(n.columns.get(c.name)!)} ${type}${this.collation(c.collation)}`);
    }
    this.add({
      stage: 'before-data',
      kind: 'composite',
      object: display(n.target),
      sql: `CREATE TYPE ${q(n.target)} AS (${attrs.join(', ')})`,
      owns: [K.cls(r.oid), K.type(r.rowType)],
    });
    this.ownership('TYPE', q(n.target), K.cls(r.oid), r.owner, r.acl);
  }

  /** Identity clause from the identity sequence's parameters. */
  private identity(c: CatColumn): string {
    const seq = (this.index.identityOf.get(c.relid) ?? []).find((s) => s.owner!.column === c.num);
    const how = c.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT';
    if (!seq) return ` GENERATED ${how} AS IDENTITY`;
    const target = this.rel(seq.relid).target;
    return ` GENERATED ${how} AS IDENTITY (SEQUENCE NAME ${q(target)} ${this.sequenceOptions(seq.relid, false)})`;
  }

  private parentOf(r: CatRelation): CatRelation | undefined {
    return r.isPartition ? this.rels.get(r.parents[0]) : undefined;
  }

  /** Defaults and CHECKs that call functions: candidates to move out of CREATE TABLE when they close a cycle. */
  private callsFunction(key: string): boolean {
    return (this.depsOf.get(key) ?? []).some((k) => k.startsWith('pg_proc:'));
  }

  private table(r: CatRelation) {
    const n = this.rel(r.oid);
    const parent = this.parentOf(r);
    const checks = (this.index.constraintsOf.get(r.oid) ?? []).filter((c) => c.type === 'c' && c.isLocal);
    // Traditional inheritance children declare only their own columns; partitions restate what differs.
    const columns = this.columnsOf(r.oid).filter((c) => c.isLocal || !r.parents.length || parent);
    const parts: TableParts = { r, n, parent, checks, columns };
    const movable = new Set([
      ...columns.filter((c) => c.defaultOid && !c.generated && this.callsFunction(K.def(c.defaultOid))).map((c) => K.def(c.defaultOid!)),
      ...checks.filter((c) => this.callsFunction(K.con(c.oid))).map((c) => K.con(c.oid)),
    ]);
    const [main, ...rest] = this.tableStatements(parts, new Set());
    this.statements.push({ ...main, split: movable.size ? () => this.tableStatements(parts, movable) : undefined }, ...rest);
    this.replicaIdentity(r, n);
    this.ownership('TABLE', q(n.target), K.cls(r.oid), r.owner, r.acl);
  }

  /** CREATE TABLE with every default and CHECK inline except those in `separate`, which follow as ALTER TABLE. */
  private tableStatements({ r, n, parent, checks, columns }: TableParts, separate: Set<string>): Statement[] {
    const what = `table ${display(n.target)}`;
    const inline = (key: string) => !separate.has(key);
    const parts: string[] = [];
    const owns = [K.cls(r.oid), K.type(r.rowType), ...(this.index.identityOf.get(r.oid) ?? []).map((s) => K.cls(s.relid))];
    for (const c of columns) {
      const part = parent ? this.partitionColumn(r, parent, c, inline) : this.column(n, c, inline, what);
      if (part === null) continue;
      if (part) parts.push(part);
      if (c.defaultOid && inline(K.def(c.defaultOid))) owns.push(K.def(c.defaultOid));
    }
    for (const c of checks) {
      if (!c.validated || !inline(K.con(c.oid))) continue;
      const def = this.rewrite(c.def, `constraint ${c.name} on ${what}`, { relation: n });
      if (def === null) continue;
      parts.push(`CONSTRAINT ${ident(this.names.map.plain(c.name))} ${def}${c.noInherit && !def.includes('NO INHERIT') ? ' NO INHERIT' : ''}`);
      owns.push(K.con(c.oid));
    }
    const out: Statement[] = [
      { stage: 'before-data', kind: parent ? 'partition' : 'table', object: display(n.target), sql: this.createTable(r, n, parent, parts), owns, after: [] },
    ];
    for (const c of columns.filter((c) => c.defaultOid && !inline(K.def(c.defaultOid)))) {
      const def = this.rewrite(c.defaultExpr!, `default of ${what}.${c.name}`, { relation: n });
      if (def === null) continue;
      const col = ident(n.columns.get(c.name)!);
      out.push({
        stage: 'before-data',
        kind: 'default',
        object: `${display(n.target)}.${col}`,
        sql: `ALTER TABLE ${q(n.target)} ALTER COLUMN ${col} SET DEFAULT ${def}`,
        owns: [K.def(c.defaultOid!)],
        after: [K.cls(r.oid)],
      });
    }
    // NOT VALID checks cannot be declared in CREATE TABLE.
    for (const c of checks.filter((c) => !c.validated || !inline(K.con(c.oid)))) {
      const def = this.rewrite(c.def, `constraint ${c.name} on ${what}`, { relation: n });
      if (def === null) continue;
      const name = this.names.map.plain(c.name);
      out.push({
        stage: 'before-data',
        kind: 'check',
        object: displayOn(name, n.target),
        sql: `ALTER TABLE ${q(n.target)} ADD CONSTRAINT ${ident(name)} ${def}`,
        owns: [K.con(c.oid)],
        after: [K.cls(r.oid)],
      });
    }
    return out;
  }

  /** A column definition; '' when it has nothing to say, null when it cannot be rendered. */
  private column(n: RelationNames, c: CatColumn, inline: (key: string) => boolean, what: string): string | null {
    const type = this.rewrite(c.type, `column ${c.name} of ${what}`);
    if (type === null) return null;
    let sql = `${ident(n.columns.get(c.name)!)} ${type}${this.collation(c.collation)}`;
    if (c.defaultOid && (c.generated || inline(K.def(c.defaultOid)))) {
      const expr = this.rewrite(c.defaultExpr!, `${c.generated ? 'generated column' : 'default of'} ${what}.${c.name}`, { relation: n });
      if (expr !== null) sql += c.generated ? ` GENERATED ALWAYS AS (${expr})${c.generated === 'v' ? ' VIRTUAL' : ' STORED'}` : ` DEFAULT ${expr}`;
    }
    if (c.identity) sql += this.identity(c);
    if (c.notNull) sql += ' NOT NULL';
    return sql;
  }

  /** A partition's column: only what differs from the parent (the rest is inherited). */
  private partitionColumn(r: CatRelation, parent: CatRelation, c: CatColumn, inline: (key: string) => boolean): string | null {
    const n = this.rel(r.oid);
    const p = this.columnsOf(parent.oid).find((x) => x.name === c.name);
    const opts: string[] = [];
    if (c.defaultOid && !c.generated && inline(K.def(c.defaultOid)) && c.defaultExpr !== p?.defaultExpr) {
      const expr = this.rewrite(c.defaultExpr!, `default of ${display(n.target)}.${c.name}`, { relation: n });
      if (expr !== null) opts.push(`DEFAULT ${expr}`);
    }
    if (c.notNull && !p?.notNull) opts.push('NOT NULL');
    return opts.length ? `${ident(n.columns.get(c.name)!)} WITH OPTIONS ${opts.join(' ')}` : '';
  }

  private createTable(r: CatRelation, n: RelationNames, parent: CatRelation | undefined, parts: string[]): string {
    const unlogged = r.persistence === 'u' ? 'UNLOGGED ' : '';
    let sql = `CREATE ${unlogged}TABLE ${q(n.target)}`;
    if (parent) {
      sql += ` PARTITION OF ${q(this.rel(parent.oid).target)}${parts.length ? ` (${parts.join(', ')})` : ''} ${r.partBound}`;
    } else {
      sql += ` (${parts.join(', ')})`;
      const parents = r.parents.map((p) => this.rels.get(p)).filter((p): p is CatRelation => !!p);
      if (parents.length) sql += ` INHERITS (${parents.map((p) => q(this.rel(p.oid).target)).join(', ')})`;
    }
    if (r.partKey) sql += ` PARTITION BY ${this.rewrite(r.partKey, `partition key of ${display(n.target)}`, { relation: n }) ?? r.partKey}`;
    if (r.accessMethod) sql += ` USING ${ident(r.accessMethod)}`;
    if (r.options?.length) sql += ` WITH (${r.options.join(', ')})`;
    return sql;
  }

  private replicaIdentity(r: CatRelation, n: RelationNames) {
    const mode = r.replIdent === 'f' ? 'FULL' : r.replIdent === 'n' ? 'NOTHING' : null;
    if (!mode) return;
    this.add({
      stage: 'before-data',
      kind: 'replica-identity',
      object: display(n.target),
      sql: `ALTER TABLE ${q(n.target)} REPLICA IDENTITY ${mode}`,
      owns: [],
      after: [K.cls(r.oid)],
    });
  }

  private view(r: CatRelation) {
    const n = this.rel(r.oid);
    const materialized = r.kind === 'm';
    const what = `${materialized ? 'materialized view' : 'view'} ${display(n.target)}`;
    const query = this.rewrite(r.viewDef!.trim().replace(/;$/, ''), what);
    if (query === null) {
      this.leaveOut(K.cls(r.oid), what, 'not created');
      return;
    }
    const cols = this.columnsOf(r.oid).map((c) => ident(n.columns.get(c.name)!));
    const opts = r.options?.length ? ` WITH (${r.options.join(', ')})` : '';
    const am = r.accessMethod ? ` USING ${ident(r.accessMethod)}` : '';
    const head = materialized
      ? `CREATE MATERIALIZED VIEW ${q(n.target)} (${cols.join(', ')})${am}${opts}`
      : `CREATE VIEW ${q(n.target)} (${cols.join(', ')})${opts}`;
    const tail = materialized ? ` WITH ${r.populated ? '' : 'NO '}DATA` : '';
    const rule = this.index.ruleOf.get(r.oid);
    this.add({
      stage: materialized ? 'post-data' : 'before-data',
      kind: materialized ? 'materialized-view' : 'view',
      object: display(n.target),
      sql: `${head} AS\n${query}${tail}`,
      owns: [K.cls(r.oid), K.type(r.rowType), ...(rule ? [K.rule(rule)] : [])],
    });
    this.ownership(materialized ? 'MATERIALIZED VIEW' : 'VIEW', q(n.target), K.cls(r.oid), r.owner, r.acl);
  }

  // ---- keys, constraints and indexes ------------------------------------------------------------

  /**
   * Primary keys and the row key of each table (activities/selection.ts) are
   * built in the keys stage: the change apply needs them. A table gets the
   * replica identity of its row key (lib/selection.ts), emitted with that index.
   */
  private keysAndIndexes() {
    const rowKeys = new Set([...this.cat.rowKeys.values()].filter((k) => !k.primary).map((k) => k.oid));
    const replicaIndex = new Set([...migratedReplicaIdentities(this.cat).values()].filter((ri) => ri.mode === 'i').map((ri) => ri.index));
    for (const i of this.cat.indexes) {
      const table = this.rels.get(i.relid)!;
      const n = this.rel(i.relid);
      const con = i.constraintOid ? this.index.constraints.get(i.constraintOid) : undefined;
      const stage: SchemaStage = i.primary || rowKeys.has(i.oid) ? 'keys' : 'post-data';
      if (!i.valid) {
        const what = `index ${displayOn(i.name, n.target)}`;
        this.leaveOut(K.cls(i.oid), what, 'invalid on the source', `${what} not created: it is invalid on the source (a failed CREATE INDEX CONCURRENTLY?)`);
        continue;
      }
      const sql = con ? this.constraintSql(con, i, n, table) : this.indexSql(i, n, table);
      if (sql === null) {
        this.leaveOut(con ? K.con(con.oid) : K.cls(i.oid), `index ${displayOn(i.name, n.target)}`, 'not created');
        continue;
      }
      const kind = i.primary ? 'primary-key' : rowKeys.has(i.oid) ? 'replica-key' : con?.type === 'u' ? 'unique' : con?.type === 'x' ? 'exclusion' : 'index';
      const name = ident(this.names.map.plain(i.name));
      // Partitioned tables and partitions attach indexes across tables: they wait for the keys / post-data phases.
      const early = table.kind === 'r' && !table.isPartition ? display(n.target) : undefined;
      this.add({
        stage,
        kind,
        object: displayOn(this.names.map.plain(i.name), n.target),
        sql,
        owns: con ? [K.con(con.oid), K.cls(i.oid)] : [K.cls(i.oid)],
        table: early,
      });
      if (i.parentIndex) this.attachIndex(i, stage);
      if (replicaIndex.has(i.oid)) {
        this.add({
          stage,
          kind: 'replica-identity',
          object: display(n.target),
          sql: `ALTER TABLE ${q(n.target)} REPLICA IDENTITY USING INDEX ${name}`,
          owns: [],
          after: [K.cls(i.oid)],
          table: early,
        });
      }
    }
    for (const c of this.cat.constraints.filter((c) => c.type === 'f' && c.parentOid === 0)) this.foreignKey(c);
  }

  private attachIndex(i: CatIndex, stage: SchemaStage) {
    const parent = this.index.indexes.get(i.parentIndex!);
    if (!parent) return;
    const schema = this.rel(i.relid).target.schema;
    const parentSchema = this.rel(parent.relid).target.schema;
    const child = qualified(schema, this.names.map.plain(i.name));
    this.add({
      stage,
      kind: 'index-attach',
      object: child,
      sql: `ALTER INDEX ${qualified(parentSchema, this.names.map.plain(parent.name))} ATTACH PARTITION ${child}`,
      owns: [],
      after: [K.cls(i.oid), K.cls(parent.oid)],
    });
  }

  private columnList(relid: number, nums: number[]): string {
    const cols = this.columnsOf(relid);
    const n = this.rel(relid);
    return nums.map((k) => ident(n.columns.get(cols.find((c) => c.num === k)!.name)!)).join(', ');
  }

  private deferrable(c: CatConstraint): string {
    return c.deferrable ? ` DEFERRABLE INITIALLY ${c.deferred ? 'DEFERRED' : 'IMMEDIATE'}` : '';
  }

  private constraintSql(c: CatConstraint, i: CatIndex, n: RelationNames, table: CatRelation): string | null {
    const name = ident(this.names.map.plain(c.name));
    const only = table.kind === 'p' || table.isPartition || c.type === 'x' ? 'ONLY ' : '';
    if (c.type === 'x') {
      const def = this.rewrite(c.def, `constraint ${c.name} on ${display(n.target)}`, { relation: n });
      return def === null ? null : `ALTER TABLE ${only}${q(n.target)} ADD CONSTRAINT ${name} ${def}`;
    }
    const keys = this.columnList(i.relid, i.keys.slice(0, i.keyCount));
    const include = i.keys.length > i.keyCount ? ` INCLUDE (${this.columnList(i.relid, i.keys.slice(i.keyCount))})` : '';
    const kind = c.type === 'p' ? 'PRIMARY KEY' : `UNIQUE${i.nullsNotDistinct ? ' NULLS NOT DISTINCT' : ''}`;
    const opts = i.options?.length ? ` WITH (${i.options.join(', ')})` : '';
    return `ALTER TABLE ${only}${q(n.target)} ADD CONSTRAINT ${name} ${kind} (${keys})${include}${opts}${this.deferrable(c)}`;
  }

  private indexSql(i: CatIndex, n: RelationNames, table: CatRelation): string | null {
    // Everything from USING on comes from pg_get_indexdef; the head is ours (mapped index and table names).
    const at = indexUsingOffset(i.def);
    if (at < 0) throw new Error(`unexpected index definition: ${i.def}`);
    const tail = this.rewrite(i.def.slice(at), `index ${i.name} on ${display(n.target)}`, { relation: n });
    if (tail === null) return null;
    const only = table.kind === 'p' ? 'ONLY ' : '';
    return `CREATE ${i.unique ? 'UNIQUE ' : ''}INDEX ${ident(this.names.map.plain(i.name))} ON ${only}${q(n.target)} ${tail}`;
  }

  private foreignKey(c: CatConstraint) {
    const n = this.rel(c.relid);
    const name = ident(this.names.map.plain(c.name));
    const ref = this.names.relationById(c.refRelid);
    if (!ref) {
      const what = `foreign key ${displayOn(this.names.map.plain(c.name), n.target)}`;
      this.leaveOut(K.con(c.oid), what, 'not created', `${what} not created: the table it references is not migrated`);
      return;
    }
    let sql = `ALTER TABLE ${q(n.target)} ADD CONSTRAINT ${name} FOREIGN KEY (${this.columnList(c.relid, c.keys)}) REFERENCES ${q(ref.target)} (${this.columnList(c.refRelid, c.refKeys)})`;
    if (c.matchType === 'f') sql += ' MATCH FULL';
    if (c.updateAction !== 'a') sql += ` ON UPDATE ${FK_ACTIONS[c.updateAction]}`;
    if (c.deleteAction !== 'a') {
      sql += ` ON DELETE ${FK_ACTIONS[c.deleteAction]}`;
      if (c.deleteSetColumns?.length) sql += ` (${this.columnList(c.relid, c.deleteSetColumns)})`;
    }
    sql += this.deferrable(c);
    if (!c.validated) sql += ' NOT VALID';
    const plain = (oid: number) => {
      const r = this.rels.get(oid);
      return !!r && r.kind === 'r' && !r.isPartition;
    };
    const early = plain(c.relid) && plain(c.refRelid) ? { table: display(n.target), references: display(ref.target) } : {};
    this.add({
      stage: 'post-data',
      kind: 'foreign-key',
      object: displayOn(this.names.map.plain(c.name), n.target),
      sql,
      owns: [K.con(c.oid)],
      after: [K.cls(c.refRelid)],
      ...early,
    });
  }

  private triggers() {
    for (const t of this.cat.triggers) {
      const n = this.rel(t.relid);
      const name = this.names.map.plain(t.name);
      if (!this.config.objects.triggers) {
        const what = `trigger ${displayOn(name, n.target)}`;
        this.leaveOut(K.trg(t.oid), what, 'objects.triggers is false', `${what} not created (objects.triggers is false)`);
        continue;
      }
      const def = this.rewrite(t.def, `trigger ${t.name} on ${display(n.target)}`, {
        relation: n,
        rowAliases: ['old', 'new'],
        names: new Map([[t.name, name]]),
      });
      if (def === null) {
        this.leaveOut(K.trg(t.oid), `trigger ${displayOn(name, n.target)}`, 'not created');
        continue;
      }
      const disable = t.enabled === 'D' ? `;\nALTER TABLE ${q(n.target)} DISABLE TRIGGER ${ident(name)}` : '';
      this.add({ stage: 'post-data', kind: 'trigger', object: displayOn(name, n.target), sql: def + disable, owns: [K.trg(t.oid)] });
    }
  }

  private statisticsObjects() {
    for (const s of this.cat.statistics) {
      const n = this.rel(s.relid);
      const target = this.names.object(s.schema, s.name);
      const def = this.rewrite(s.def, `statistics ${display(target)}`, { relation: n });
      if (def === null) continue;
      this.add({ stage: 'post-data', kind: 'statistics', object: display(target), sql: def, owns: [objKey('pg_statistic_ext', s.oid)] });
    }
  }

  private unsupported() {
    for (const r of this.cat.rules) this.warnings.push(`rule ${displayOn(r.name, this.rel(r.relid).target)} not created: rules are not migrated`);
    for (const p of this.cat.policies) {
      this.warnings.push(`policy ${displayOn(p.name, this.rel(p.relid).target)} not created: row-level security policies are not migrated`);
    }
  }

  // ---- comments ---------------------------------------------------------------------------------

  private comments() {
    for (const c of this.cat.comments) {
      const target = this.commentTarget(c.catalog, c.oid, c.sub);
      if (!target) continue;
      this.add({
        stage: 'before-data',
        kind: 'comment',
        object: target,
        sql: `COMMENT ON ${target} IS ${literal(c.text)}`,
        owns: [],
        after: [objKey(c.catalog, c.oid)],
        quiet: true,
      });
    }
  }

  private commentTarget(catalog: string, oid: number, sub: number): string | null {
    switch (catalog) {
      case 'pg_namespace': {
        const s = this.index.schemas.get(oid);
        return s ? `SCHEMA ${ident(this.names.map.schema(s.name))}` : null;
      }
      case 'pg_class':
        return this.relationComment(oid, sub);
      case 'pg_type': {
        const t = this.index.types.get(oid);
        if (t) return `${t.kind === 'd' ? 'DOMAIN' : 'TYPE'} ${q(this.names.object(t.schema, t.name))}`;
        const composite = this.cat.relations.find((r) => r.kind === 'c' && r.rowType === oid);
        return composite ? `TYPE ${q(this.rel(composite.oid).target)}` : null;
      }
      case 'pg_proc': {
        const f = this.index.functions.get(oid);
        if (!f) return null;
        const args = rewriteSql(f.identityArgs, this.names);
        return args.ok ? `${f.kind === 'p' ? 'PROCEDURE' : 'FUNCTION'} ${q(this.names.object(f.schema, f.name))}(${args.sql})` : null;
      }
      case 'pg_constraint': {
        const c = this.index.constraints.get(oid);
        if (!c) return null;
        const name = ident(this.names.map.plain(c.name));
        if (c.typid) {
          const t = this.index.types.get(c.typid)!;
          return `CONSTRAINT ${name} ON DOMAIN ${q(this.names.object(t.schema, t.name))}`;
        }
        return `CONSTRAINT ${name} ON ${q(this.rel(c.relid).target)}`;
      }
      case 'pg_trigger': {
        const t = this.index.triggers.get(oid);
        return t ? `TRIGGER ${ident(this.names.map.plain(t.name))} ON ${q(this.rel(t.relid).target)}` : null;
      }
      case 'pg_collation': {
        const c = this.index.collations.get(oid);
        return c ? `COLLATION ${q(this.names.object(c.schema, c.name))}` : null;
      }
      case 'pg_statistic_ext': {
        const s = this.index.statistics.get(oid);
        return s ? `STATISTICS ${q(this.names.object(s.schema, s.name))}` : null;
      }
      default:
        return null;
    }
  }

  private relationComment(oid: number, sub: number): string | null {
    const index = this.index.indexes.get(oid);
    if (index) return `INDEX ${qualified(this.rel(index.relid).target.schema, this.names.map.plain(index.name))}`;
    const r = this.rels.get(oid);
    if (!r) return null;
    const n = this.rel(oid);
    if (sub > 0) {
      const col = this.columnsOf(oid).find((c) => c.num === sub);
      return col ? `COLUMN ${q(n.target)}.${ident(n.columns.get(col.name)!)}` : null;
    }
    const kinds: Record<string, string> = { r: 'TABLE', p: 'TABLE', v: 'VIEW', m: 'MATERIALIZED VIEW', S: 'SEQUENCE', c: 'TYPE', f: 'FOREIGN TABLE' };
    return `${kinds[r.kind]} ${q(n.target)}`;
  }
}

export function renderSchema(cat: SourceCatalog, names: SchemaNames, config: Config): Rendered {
  return new Renderer(cat, names, config).render();
}
