// Source name → destination name, for schemas, tables, columns and every other
// schema-qualified object. One mapping used by schema migration, full load,
// change apply and verification, so they can never disagree. Pure (no I/O).
//
// Rules: an explicit rename is taken literally; every other name follows the
// name-case policy. A table rename may move the table to another schema.
import type { Config } from './config';
import { parseQualifiedName, type TableName } from './ident';

export interface NameMapper {
  schema(schema: string): string;
  /** A table (or partition) — honours objects.rename.tables, then the schema mapping. */
  table(schema: string, table: string): TableName;
  column(schema: string, table: string, column: string): string;
  /** Any other schema-qualified object (view, type, sequence, function, index, constraint). */
  object(schema: string, name: string): TableName;
  /** Names inside an object (constraint, index, enum-less identifiers) follow the case policy only. */
  plain(name: string): string;
  /** True when any rename or a case change is configured (the 1,000-table limit applies). */
  readonly renames: boolean;
}

type Objects = Pick<Config['objects'], 'rename' | 'nameCase'>;

const key = (...parts: string[]) => JSON.stringify(parts);

export function nameMapper(objects: Objects): NameMapper {
  const cased = (s: string) => (objects.nameCase === 'lower' ? s.toLowerCase() : objects.nameCase === 'upper' ? s.toUpperCase() : s);
  const schemas = new Map(Object.entries(objects.rename.schemas));
  const tables = new Map<string, TableName>();
  for (const [from, to] of Object.entries(objects.rename.tables)) {
    const [fs, ft] = parseQualifiedName(from, 2);
    const [ts, tt] = parseQualifiedName(to, 2);
    tables.set(key(fs, ft), { schema: ts, table: tt });
  }
  const columns = new Map<string, string>();
  for (const [from, to] of Object.entries(objects.rename.columns)) {
    const [s, t, c] = parseQualifiedName(from, 3);
    columns.set(key(s, t, c), to);
  }
  const schema = (s: string) => schemas.get(s) ?? cased(s);
  return {
    schema,
    table: (s, t) => tables.get(key(s, t)) ?? { schema: schema(s), table: cased(t) },
    column: (s, t, c) => columns.get(key(s, t, c)) ?? cased(c),
    object: (s, n) => ({ schema: schema(s), table: cased(n) }),
    plain: cased,
    renames: schemas.size + tables.size + columns.size > 0 || objects.nameCase !== 'keep',
  };
}

/** PostgreSQL truncates identifiers to NAMEDATALEN-1 bytes; a longer mapped name would silently change. */
export const MAX_IDENTIFIER_BYTES = 63;
export const tooLong = (name: string) => Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES;

export interface Collision {
  /** Destination name in display syntax. */
  target: string;
  /** The source objects that map to it. */
  sources: string[];
}

/** Group source names by their mapped name; every group of two or more is a collision. */
export function collisions<T>(items: T[], target: (t: T) => string, label: (t: T) => string): Collision[] {
  const groups = new Map<string, string[]>();
  for (const it of items) {
    const k = target(it);
    groups.set(k, [...(groups.get(k) ?? []), label(it)]);
  }
  return [...groups.entries()].filter(([, v]) => v.length > 1).map(([target, sources]) => ({ target, sources }));
}
