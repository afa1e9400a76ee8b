// Names that would clash on the destination after mapping, or be truncated by
// the server (NAMEDATALEN): both must stop the plan before anything is created.
import { displayName } from '../../lib/ident';
import { collisions, MAX_IDENTIFIER_BYTES, tooLong } from '../../lib/name-mapping';
import type { SourceCatalog } from './read';
import type { SchemaNames } from './scope';

interface Named {
  /** Destination name parts; the last one is the object's own name. */
  target: string[];
  source: string;
}

const RELATION_KINDS: Record<string, string> = { r: 'table', p: 'table', v: 'view', m: 'materialized view', S: 'sequence', c: 'type', f: 'foreign table' };

/** Each list is one namespace of the destination (relations of a schema, columns of a table, …). */
function namespaces(cat: SourceCatalog, names: SchemaNames): Record<string, Named[]> {
  const { map } = names;
  const relTarget = (oid: number) => names.relationById(oid)!.target;
  const relSource = (oid: number) => {
    const r = names.relationById(oid)!;
    return displayName(r.schema, r.name);
  };
  const relations: Named[] = cat.relations.map((r) => ({
    target: [relTarget(r.oid).schema, relTarget(r.oid).table],
    source: `${RELATION_KINDS[r.kind]} ${displayName(r.schema, r.name)}`,
  }));
  const indexes: Named[] = cat.indexes.map((i) => ({
    target: [relTarget(i.relid).schema, map.plain(i.name)],
    source: `index ${displayName(names.relationById(i.relid)!.schema, i.name)}`,
  }));
  const type = (schema: string, name: string): Named => {
    const t = names.object(schema, name);
    return { target: [t.schema, t.table], source: `type ${displayName(schema, name)}` };
  };
  const types: Named[] = [
    ...cat.types.flatMap((t) => (t.range?.multirange ? [type(t.schema, t.name), type(t.schema, t.range.multirange.name)] : [type(t.schema, t.name)])),
    ...relations.filter((_, i) => cat.relations[i].kind !== 'S'),
  ];
  // Overloads share a name: a function is its name and its argument types.
  const functions: Named[] = cat.functions.map((f) => {
    const t = names.object(f.schema, f.name);
    return { target: [t.schema, `${t.table}(${f.identityArgs})`], source: `function ${displayName(f.schema, f.name)}(${f.identityArgs})` };
  });
  const columns: Named[] = cat.relations.flatMap((r) =>
    (cat.columns.get(r.oid) ?? []).map((c) => ({
      target: [relTarget(r.oid).schema, relTarget(r.oid).table, names.column(r.oid, c.name)],
      source: `column ${relSource(r.oid)}.${displayName(c.name)}`,
    })),
  );
  const domain = (oid: number) => {
    const t = cat.types.find((x) => x.oid === oid)!;
    return names.object(t.schema, t.name);
  };
  const constraints: Named[] = cat.constraints.map((c) => {
    const owner = c.relid ? relTarget(c.relid) : domain(c.typid);
    return {
      target: [owner.schema, owner.table, map.plain(c.name)],
      source: `constraint ${displayName(c.name)} on ${c.relid ? relSource(c.relid) : 'a domain'}`,
    };
  });
  const triggers: Named[] = cat.triggers.map((t) => ({
    target: [relTarget(t.relid).schema, relTarget(t.relid).table, map.plain(t.name)],
    source: `trigger ${displayName(t.name)} on ${relSource(t.relid)}`,
  }));
  return {
    schemas: cat.schemas.map((s) => ({ target: [map.schema(s.name)], source: `schema ${displayName(s.name)}` })),
    'relations and indexes': [...relations, ...indexes],
    types,
    functions,
    columns,
    constraints,
    triggers,
  };
}

/** Every clash and every over-long name, one line each; empty when the mapping is sound. */
export function nameProblems(cat: SourceCatalog, names: SchemaNames): string[] {
  const out: string[] = [];
  // Clashing relations drag their row types, columns, constraints and triggers along: report the cause only.
  const clashing = new Set<string>();
  for (const [space, items] of Object.entries(namespaces(cat, names))) {
    const inner = ['columns', 'constraints', 'triggers'].includes(space);
    const candidates = inner ? items.filter((n) => !clashing.has(JSON.stringify(n.target.slice(0, 2)))) : items;
    for (const c of collisions(
      candidates,
      (n) => JSON.stringify(n.target),
      (n) => n.source,
    )) {
      if (space === 'relations and indexes') clashing.add(c.target);
      if (space === 'types' && c.sources.every((s) => !s.startsWith('type '))) continue;
      const target = JSON.parse(c.target) as string[];
      out.push(`${c.sources.sort().join(' and ')} would all be ${displayName(...target)} on the destination`);
    }
    for (const n of items) {
      const own = space === 'functions' ? n.target[n.target.length - 1].replace(/\(.*$/s, '') : n.target[n.target.length - 1];
      if (tooLong(own)) out.push(`${n.source} would be named ${displayName(own)} on the destination, longer than ${MAX_IDENTIFIER_BYTES} bytes`);
    }
  }
  return [...new Set(out)];
}
