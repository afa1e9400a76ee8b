// Identifier handling shared by every layer. SQL is never built from unquoted
// names: use `ident()` for one name and `qualified()` for schema.table.
// Pure (workflow code uses it too), so the quoting is written out here rather
// than taken from `pg`.

/** Quote one identifier exactly as it appears in the catalog: double quotes, inner quotes doubled. */
export const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * Quote a string literal: single quotes doubled; with a backslash, an E'' literal
 * with backslashes doubled, so it reads the same whatever standard_conforming_strings is.
 */
export const literal = (value: string): string => {
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? ` E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
};

/** `"schema"."table"` from catalog names. */
export const qualified = (schema: string, name: string): string => `${ident(schema)}.${ident(name)}`;

export interface TableName {
  schema: string;
  table: string;
}

// PostgreSQL's reserved key words (and those reserved as function/type names):
// unquoted they would not name a table, so display names quote them too.
const RESERVED = new Set(
  (
    'all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate collation column ' +
    'concurrently constraint create cross current_catalog current_date current_role current_schema current_time ' +
    'current_timestamp current_user default deferrable desc distinct do else end except false fetch for foreign freeze ' +
    'from full grant group having ilike in initially inner intersect into is isnull join lateral leading left like limit ' +
    'localtime localtimestamp natural not notnull null offset on only or order outer overlaps placing primary references ' +
    'returning right select session_user similar some symmetric system_user table tablesample then to trailing true union ' +
    'unique user using variadic verbose when where window with'
  ).split(' '),
);

/** Render a name the way a user writes it in SQL and in the config (quotes only where needed). */
export function displayName(...parts: string[]): string {
  return parts.map((p) => (/^[a-z_][a-z0-9_$]*$/.test(p) && !RESERVED.has(p) ? p : ident(p))).join('.');
}

export class NameSyntaxError extends Error {}

/**
 * Parse a qualified name written in SQL identifier syntax: `app.orders`,
 * `"Billing Ops"."Order Items"`, `app."We""ird"`. Parts are never split on dots
 * inside quotes. Unquoted parts must be lower-case: SQL would fold `Orders` to
 * `orders`, and silently guessing which one the user meant is how migrations
 * skip tables, so capitals must be quoted.
 */
export function parseQualifiedName(text: string, expectedParts: number): string[] {
  const parts: string[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new NameSyntaxError(why);
  };
  while (i <= text.length) {
    if (text[i] === '"') {
      let name = '';
      i++;
      for (;;) {
        if (i >= text.length) fail(`unterminated quoted name in ${JSON.stringify(text)}`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            name += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        name += text[i++];
      }
      if (name === '') fail(`empty quoted name in ${JSON.stringify(text)}`);
      parts.push(name);
    } else {
      const start = i;
      while (i < text.length && text[i] !== '.') i++;
      const name = text.slice(start, i);
      if (name === '') fail(`empty name part in ${JSON.stringify(text)}`);
      if (!/^[a-z_][a-z0-9_$]*$/.test(name)) {
        fail(
          `${JSON.stringify(name)} in ${JSON.stringify(text)} must be double-quoted ` +
            `(unquoted names are lower-case letters, digits and _; write "${name.replace(/"/g, '""')}")`,
        );
      }
      parts.push(name);
    }
    if (i === text.length) break;
    if (text[i] !== '.') fail(`expected "." after a quoted name in ${JSON.stringify(text)}`);
    i++;
    if (i === text.length) fail(`name ends with "." in ${JSON.stringify(text)}`);
  }
  if (parts.length !== expectedParts) {
    const shape = expectedParts === 2 ? 'schema.table' : expectedParts === 3 ? 'schema.table.column' : 'name';
    fail(`${JSON.stringify(text)} has ${parts.length} part(s), expected ${shape}`);
  }
  return parts;
}

export function parseTableName(text: string): TableName {
  const [schema, table] = parseQualifiedName(text, 2);
  return { schema, table };
}
