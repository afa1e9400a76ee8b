// Destination names of the source catalog's objects: the configured mapping
// (lib/name-mapping.ts) plus what only the catalog knows — which names are relations
// (they follow objects.rename.tables) and which belong to an extension (they
// keep their names: CREATE EXTENSION creates them as they are).
import type { Config } from '../../lib/config';
import { displayName, type TableName } from '../../lib/ident';
import { nameMapper, type NameMapper } from '../../lib/name-mapping';
import type { CatRelation, SourceCatalog } from './read';
import type { NameScope, RelationNames } from './rewrite';

export interface SchemaNames extends NameScope {
  map: NameMapper;
  relationById(oid: number): RelationNames | undefined;
  column(relid: number, column: string): string;
}

export const display = (t: TableName) => displayName(t.schema, t.table);
/** A name that lives inside a table or type (index, constraint, trigger), in display syntax. */
export const displayOn = (name: string, t: TableName) => `${displayName(name)} on ${display(t)}`;

export function schemaNames(cat: SourceCatalog, config: Config): SchemaNames {
  const map = nameMapper(config.objects);
  const schemas = new Map(cat.schemas.map((s) => [s.name, map.schema(s.name)]));
  const byName = new Map<string, RelationNames>();
  const byOid = new Map<number, RelationNames>();
  const add = (r: CatRelation) => {
    const names: RelationNames = {
      schema: r.schema,
      name: r.name,
      target: map.table(r.schema, r.name),
      columns: new Map((cat.columns.get(r.oid) ?? []).map((c) => [c.name, map.column(r.schema, r.name, c.name)])),
    };
    byName.set(JSON.stringify([r.schema, r.name]), names);
    byOid.set(r.oid, names);
  };
  cat.relations.forEach(add);
  const object = (schema: string, name: string): TableName =>
    cat.extensionMemberNames.has(JSON.stringify([schema, name])) ? { schema: map.schema(schema), table: name } : map.object(schema, name);
  return {
    map,
    schemas,
    keywords: cat.keywords,
    relation: (schema, name) => byName.get(JSON.stringify([schema, name])),
    relationById: (oid) => byOid.get(oid),
    object,
    column: (relid, column) => byOid.get(relid)?.columns.get(column) ?? column,
  };
}
