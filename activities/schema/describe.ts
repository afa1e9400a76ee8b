// A catalog described as comparable entries, for schema verification.
//
// Both servers are read with the same catalog reader (read.ts) and described
// in destination terms: the source through the name mapping (names and SQL
// text rewritten as the plan rewrote them), the destination through the
// identity mapping. verify-schema.ts compares the two entry by entry.
//
// Server-rendered text differs between major versions in a few known ways;
// each normalization below names the version that introduced it and is
// applied to both sides, so it can only hide a difference of that kind.
import { displayName, type TableName } from '../../lib/ident';
import { migratedReplicaIdentities, objKey, type CatColumn, type CatRelation, type SourceCatalog } from './read';
import { rewriteSql } from './rewrite';
import { display, displayOn, type SchemaNames } from './scope';
import { indexUsingOffset, lex } from './sqltext';

export interface Entry {
  kind: string;
  /** Destination object in display syntax. */
  object: string;
  props: Record<string, string>;
  /** The entry this one belongs to (a table's columns, keys, indexes): reported with it when it is missing. */
  parent?: string;
}

/** How one side names things in destination terms. */
export interface Naming {
  relation(oid: number): TableName;
  column(relid: number, name: string): string;
  object(schema: string, name: string): TableName;
  /** Names that live inside a table or type (constraints, triggers). */
  plain(name: string): string;
  /** Deparsed SQL in destination terms; `relid`: unqualified columns belong to it. */
  sql(text: string, relid?: number): string;
}

/**
 * Names through a side's mapping: the source's is the plan's, the destination's
 * the identity. Both sides' SQL passes the same rewriter, so it is quoted alike.
 */
export function mappedNaming(names: SchemaNames, quotedKeywords: Set<string>): Naming {
  return {
    relation: (oid) => names.relationById(oid)!.target,
    column: (relid, name) => names.column(relid, name),
    object: (schema, name) => (names.schemas.has(schema) ? names.object(schema, name) : { schema, table: name }),
    plain: (name) => names.map.plain(name),
    sql: (text, relid) => {
      const r = rewriteSql(text, names, relid === undefined ? {} : { relation: names.relationById(relid) });
      // The plan left such an object out (and warned); the destination cannot match it.
      return r.ok ? canonicalQuotes(r.sql, quotedKeywords) : `(not rewritable for the renamed objects: ${r.why})`;
    },
  };
}

const RELATION_KIND: Record<string, string> = {
  r: 'table',
  p: 'table',
  f: 'foreign table',
  v: 'view',
  m: 'materialized view',
  S: 'sequence',
  c: 'composite type',
};
const TYPE_KIND: Record<string, string> = { e: 'enum', d: 'domain', r: 'range type' };

/**
 * The server quotes a name only where it must; the rewriter quotes every name
 * it maps. Drop the quotes that are not needed so both read alike.
 */
export function canonicalQuotes(sql: string, quotedKeywords: Set<string>): string {
  return lex(sql)
    .map((t) => {
      if (t.type !== 'qident') return t.text;
      const name = t.text.slice(1, -1);
      return /^[a-z_][a-z0-9_$]*$/.test(name) && !quotedKeywords.has(name) ? name : t.text;
    })
    .join('');
}

/**
 * A view's column names come from its column list when the plan renamed the
 * columns it selects (`full_name AS name` on the destination, `full_name` in the
 * rewritten source query); they are compared on their own, so the text drops
 * `AS alias`.
 */
function withoutAliases(sql: string): string {
  const toks = lex(sql);
  const out: string[] = [];
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    if (t.type === 'ident' && t.text === 'AS' && toks[i + 1]?.type === 'space' && (toks[i + 2]?.type === 'ident' || toks[i + 2]?.type === 'qident')) {
      // drop the space before AS too
      if (out.length && /^\s+$/.test(out[out.length - 1])) out.pop();
      i += 2;
      continue;
    }
    out.push(t.text);
  }
  return out.join('');
}

/**
 * PostgreSQL 16 stopped qualifying the columns of a view over one relation
 * (`SELECT t.id FROM app.t` became `SELECT id FROM app.t`). For such views,
 * drop every `name.` qualifier on both sides.
 */
export function unqualified(sql: string): string {
  const toks = lex(sql);
  const out: string[] = [];
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    const next = toks[i + 1];
    const prev = out.length ? toks[i - 1] : undefined;
    if ((t.type === 'ident' || t.type === 'qident') && next?.type === 'op' && next.text === '.' && !(prev?.type === 'op' && prev.text === '.')) {
      i++; // skip the name and its dot
      continue;
    }
    out.push(t.text);
  }
  return out.join('');
}

/** PostgreSQL 17 added MAINTAIN (m) to a table owner's default privileges. */
const aclText = (acl: string[] | null) =>
  (acl ?? [])
    .map((a) => a.replace(/^(.*=[a-zA-Z*]*?)m([a-zA-Z*]*\/.*)$/, '$1$2'))
    .sort()
    .join(' ');

/** `CREATE [UNIQUE] INDEX name ON [ONLY] table USING …` → `[UNIQUE] [ONLY] USING …`: indexes compare by definition. */
function indexShape(def: string): string {
  return `${/^CREATE UNIQUE /.test(def) ? 'UNIQUE ' : ''}${/ ON ONLY /.test(def) ? 'ONLY ' : ''}${def.slice(Math.max(0, indexUsingOffset(def)))}`;
}

export interface DescribeOptions {
  triggers: boolean;
  ownership: boolean;
  /**
   * `migrated`: describe each table's replica identity as the migration sets it
   * (the source side: lib/selection.ts); `actual`: as the catalog has it (the destination).
   */
  replicaIdentity: 'migrated' | 'actual';
}

export const entryKey = (kind: string, object: string) => `${kind}\u0000${object}`;
/** The key of a relation's entry, for its parts. */
const relationKey = (r: CatRelation | undefined, name: string) => (r ? entryKey(RELATION_KIND[r.kind] ?? `relation ${r.kind}`, name) : undefined);

export function describeCatalog(cat: SourceCatalog, naming: Naming, opts: DescribeOptions): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  /** Catalog object (objKey, with sub-id for columns) → entry, for comments. */
  const byObject = new Map<string, Entry>();
  const add = (kind: string, object: string, props: Record<string, string | number | boolean | null | undefined>, source?: string, parent?: string) => {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(props)) if (v !== null && v !== undefined && v !== '') clean[k] = String(v);
    const e: Entry = { kind, object, props: clean, parent };
    entries.set(entryKey(kind, object), e);
    if (source) byObject.set(source, e);
    return e;
  };
  const rels = new Map(cat.relations.map((r) => [r.oid, r]));
  const relName = (oid: number) => (rels.has(oid) ? display(naming.relation(oid)) : `(relation ${oid}, not selected)`);
  const singleRelation = singleRelationViews(cat);
  const migrated = opts.replicaIdentity === 'migrated' ? migratedReplicaIdentities(cat) : null;
  const replicaIdentityOf = (r: CatRelation) => migrated?.get(r.oid)?.mode ?? r.replIdent;
  const replicaIndexes = new Set(
    migrated ? [...migrated.values()].filter((ri) => ri.mode === 'i').map((ri) => ri.index) : cat.indexes.filter((i) => i.replIdent).map((i) => i.oid),
  );
  const ownership = (owner: string, acl: string[] | null) => (opts.ownership ? { owner, privileges: aclText(acl) } : {});

  for (const s of cat.schemas) {
    add('schema', displayName(naming.object(s.name, '').schema), ownership(s.owner, s.acl), objKey('pg_namespace', s.oid));
  }
  for (const e of cat.extensions) add('extension', e.name, {});
  for (const c of cat.collations) {
    add(
      'collation',
      display(naming.object(c.schema, c.name)),
      {
        provider: c.provider,
        deterministic: c.deterministic,
        locale: c.locale ?? c.collate,
        ctype: c.ctype,
      },
      objKey('pg_collation', c.oid),
    );
  }
  for (const t of cat.types) {
    const name = display(naming.object(t.schema, t.name));
    add(
      TYPE_KIND[t.kind] ?? `type ${t.kind}`,
      name,
      {
        labels: t.labels ? JSON.stringify(t.labels) : null,
        base: t.baseType && naming.sql(t.baseType),
        notNull: t.kind === 'd' ? t.notNull : null,
        default: t.defaultExpr && naming.sql(t.defaultExpr),
        collation: t.collation && display(naming.object(...t.collation)),
        subtype: t.range && naming.sql(t.range.subtype),
        subtypeOpclass: t.range?.opclass?.join('.'),
        canonical: t.range?.canonical,
        subtypeDiff: t.range?.subdiff && display(naming.object(...t.range.subdiff)),
        ...ownership(t.owner, t.acl),
      },
      objKey('pg_type', t.oid),
    );
  }
  const columnsOf = (r: CatRelation): CatColumn[] => cat.columns.get(r.oid) ?? [];
  for (const r of cat.relations) {
    const name = relName(r.oid);
    const kind = RELATION_KIND[r.kind] ?? `relation ${r.kind}`;
    const props: Record<string, string | number | boolean | null | undefined> = { ...ownership(r.owner, r.acl) };
    if ('rpf'.includes(r.kind)) {
      props.partitioned = r.kind === 'p';
      props.persistence = r.persistence;
      props.columns = columnsOf(r)
        .map((c) => naming.column(r.oid, c.name))
        .join(', ');
      props.partitionKey = r.partKey && naming.sql(r.partKey, r.oid);
      props.partitionOf = r.isPartition ? `${relName(r.parents[0])} ${r.partBound}` : null;
      props.inherits = !r.isPartition && r.parents.length ? r.parents.map(relName).join(', ') : null;
      props.replicaIdentity = replicaIdentityOf(r);
      props.options = r.options?.slice().sort().join(', ') ?? null;
    }
    if (r.kind === 'v' || r.kind === 'm') {
      const sql = naming.sql(r.viewDef ?? '');
      props.definition = withoutAliases(singleRelation.has(r.oid) ? unqualified(sql) : sql);
      props.columns = columnsOf(r)
        .map((c) => `${naming.column(r.oid, c.name)} ${naming.sql(c.type)}`)
        .join(', ');
    }
    if (r.kind === 'c')
      props.attributes = columnsOf(r)
        .map((c) => `${naming.column(r.oid, c.name)} ${naming.sql(c.type)}`)
        .join(', ');
    if (r.kind === 'S') {
      const s = cat.sequences.get(r.oid);
      if (s) {
        Object.assign(props, { type: s.type, start: s.start, increment: s.increment, min: s.min, max: s.max, cache: s.cache, cycle: s.cycle });
        const owner = s.owner && rels.get(s.owner.relid);
        const col = owner && columnsOf(owner).find((c) => c.num === s.owner!.column);
        props.ownedBy = owner && col ? `${relName(owner.oid)}.${naming.column(owner.oid, col.name)}` : null;
        // An identity column's sequence is named by the server when it is created; its column identifies it.
        if (s.owner?.kind === 'i') {
          add('identity sequence', props.ownedBy ?? name, { ...props, ownedBy: null }, objKey('pg_class', r.oid));
          continue;
        }
      }
    }
    add(kind, name, props, objKey('pg_class', r.oid));
    if ('rpf'.includes(r.kind)) {
      for (const c of columnsOf(r)) {
        add(
          'column',
          `${name}.${naming.column(r.oid, c.name)}`,
          {
            type: naming.sql(c.type),
            notNull: c.notNull,
            default: c.defaultExpr && naming.sql(c.defaultExpr, r.oid),
            identity: c.identity,
            generated: c.generated,
            collation: c.collation && display(naming.object(...c.collation)),
            privileges: opts.ownership ? aclText(c.acl) : null,
          },
          `${objKey('pg_class', r.oid)}:${c.num}`,
          relationKey(r, name),
        );
      }
    }
  }
  for (const c of cat.constraints) {
    const on = c.relid ? naming.relation(c.relid) : naming.object(...typeName(cat, c.typid));
    add(
      'constraint',
      displayOn(naming.plain(c.name), on),
      {
        type: c.type,
        definition: naming.sql(c.def, c.relid || undefined),
      },
      objKey('pg_constraint', c.oid),
      c.relid ? relationKey(rels.get(c.relid), display(on)) : entryKey('domain', display(on)),
    );
  }
  const seen = new Map<string, number>();
  for (const i of cat.indexes) {
    const table = naming.relation(i.relid);
    const shape = naming.sql(indexShape(i.def), i.relid);
    // Same definition twice on one table is legal; number the copies so both must exist.
    const k = `${display(table)} ${shape}`;
    const n = (seen.get(k) ?? 0) + 1;
    seen.set(k, n);
    add(
      'index',
      `on ${display(table)}: ${shape}${n > 1 ? ` (#${n})` : ''}`,
      { valid: i.valid, replicaIdentity: replicaIndexes.has(i.oid) },
      objKey('pg_class', i.oid),
      relationKey(rels.get(i.relid), display(table)),
    );
  }
  for (const f of cat.functions) {
    const name = `${display(naming.object(f.schema, f.name))}(${naming.sql(f.identityArgs)})`;
    add(
      f.kind === 'p' ? 'procedure' : f.kind === 'a' ? 'aggregate' : 'function',
      name,
      {
        definition: f.def && naming.sql(f.def.trimEnd()),
        ...ownership(f.owner, f.acl),
      },
      objKey('pg_proc', f.oid),
    );
  }
  if (opts.triggers) {
    for (const t of cat.triggers) {
      add(
        'trigger',
        displayOn(naming.plain(t.name), naming.relation(t.relid)),
        { definition: naming.sql(t.def, t.relid), enabled: t.enabled },
        objKey('pg_trigger', t.oid),
        relationKey(rels.get(t.relid), relName(t.relid)),
      );
    }
  }
  for (const s of cat.statistics) {
    add('statistics', display(naming.object(s.schema, s.name)), { definition: naming.sql(s.def, s.relid) }, objKey('pg_statistic_ext', s.oid));
  }
  for (const c of cat.comments) {
    const e = byObject.get(c.sub ? `${objKey(c.catalog, c.oid)}:${c.sub}` : objKey(c.catalog, c.oid));
    if (e) e.props.comment = c.text;
  }
  return entries;
}

function typeName(cat: SourceCatalog, oid: number): [string, string] {
  const t = cat.types.find((x) => x.oid === oid);
  return t ? [t.schema, t.name] : ['?', String(oid)];
}

/** Views (and matviews) whose query reads exactly one relation. */
function singleRelationViews(cat: SourceCatalog): Set<number> {
  const refs = new Map<number, Set<number>>();
  for (const d of cat.depends) {
    if (d.catalog !== 'pg_rewrite' || d.refCatalog !== 'pg_class') continue;
    const view = cat.viewRules.get(d.oid);
    if (view === undefined || d.refOid === view) continue;
    refs.set(view, (refs.get(view) ?? new Set()).add(d.refOid));
  }
  return new Set([...refs].filter(([, s]) => s.size === 1).map(([v]) => v));
}
