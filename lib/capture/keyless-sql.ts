// The statements that apply the changes of a table without a row key
// (lib/selection.ts keylessTablesApplied): inserts as plain multi-row inserts,
// an update or delete on exactly one row that equals the whole old image —
// among identical rows any one, since they cannot be told apart.
//
// "Equals" is exact and NULL-safe for every type, those without an equality
// operator (json, point, xml) included: a column matches when both are NULL,
// or when its text form equals the image value's, both rendered by the
// destination (the value cast to the column's type and back, compared in the
// C collation — so 0 and -0, 1.0 and 1.00, 'a' and 'A' under a
// case-insensitive collation stay different rows). For common types with a
// plain equality the condition also says `=`, so an index on such a column
// can find the row without a sequential scan.
// Pure: builds SQL text only.
import { ident, qualified } from '../ident';
import type { ApplyTable } from './sql';

const u = (i: number) => ident(`c${i}`);
const arrays = (n: number) => Array.from({ length: n }, (_, j) => `$${j + 1}::text[]`).join(', ');
const target = (t: ApplyTable) => qualified(t.target.schema, t.target.table);
const overriding = (t: ApplyTable) => (t.columns.some((c) => c.identityAlways) ? ' OVERRIDING SYSTEM VALUE' : '');

/** Destination types (format_type, typmod stripped) whose `=` is plain equality and never fails: used to narrow the search. */
const NARROWING_TYPES = new Set([
  'smallint',
  'integer',
  'bigint',
  'text',
  'character varying',
  'uuid',
  'date',
  'timestamp without time zone',
  'timestamp with time zone',
  'boolean',
  'bytea',
  'numeric',
]);

export function narrows(type: string): boolean {
  return NARROWING_TYPES.has(type.replace(/\(.*\)/, '').trim());
}

export interface Statement {
  sql: string;
  params: (string | null)[];
}

/**
 * Plain insert of complete images; with a row filter only the images that
 * match it. Parameters: one text[] per column.
 */
export function keylessInsertSql(t: ApplyTable): string {
  const cols = t.columns.map((c) => ident(c.target)).join(', ');
  const from = `unnest(${arrays(t.columns.length)}) AS u(${t.columns.map((_, i) => u(i)).join(', ')})`;
  const cast = (i: number) => `u.${u(i)}::${t.columns[i].type}`;
  if (!t.filter) return `INSERT INTO ${target(t)} (${cols})${overriding(t)} SELECT ${t.columns.map((_, i) => cast(i)).join(', ')} FROM ${from}`;
  const inner = `SELECT ${t.columns.map((c, i) => `${cast(i)} AS ${ident(c.source)}`).join(', ')} FROM ${from}`;
  return (
    `INSERT INTO ${target(t)} (${cols})${overriding(t)} SELECT ${t.columns.map((c) => `x.${ident(c.source)}`).join(', ')} ` +
    `FROM (${inner}) AS x WHERE coalesce((${t.filter}), false)`
  );
}

/** The condition "row `alias` equals `image`", its values appended to `params`. */
function matches(t: ApplyTable, narrow: boolean[], image: (string | null)[], alias: string, params: (string | null)[]): string {
  return t.columns
    .map((c, i) => {
      const col = `${alias}.${ident(c.target)}`;
      const v = image[i];
      if (v === null) return `${col} IS NULL`;
      params.push(v);
      const p = `$${params.length}::${c.type}`;
      return `${col}::text COLLATE "C" = (${p})::text` + (narrow[i] ? ` AND ${col} = ${p}` : '');
    })
    .join(' AND ');
}

/** How a row is named: ctid, with tableoid on a partitioned destination (a ctid is unique per partition only). */
const rowRef = (partitioned: boolean, alias: string) => (partitioned ? `(${alias}.tableoid, ${alias}.ctid)` : `${alias}.ctid`);

function oneRow(t: ApplyTable, narrow: boolean[], partitioned: boolean, old: (string | null)[], params: (string | null)[]): string {
  return `${rowRef(partitioned, 'd')} = (SELECT ${rowRef(partitioned, 'x')} FROM ${target(t)} AS x WHERE ${matches(t, narrow, old, 'x', params)} LIMIT 1)`;
}

/** Delete exactly one row equal to `old` (none when no row is). */
export function deleteOneSql(t: ApplyTable, narrow: boolean[], partitioned: boolean, old: (string | null)[]): Statement {
  const params: (string | null)[] = [];
  return { sql: `DELETE FROM ${target(t)} AS d WHERE ${oneRow(t, narrow, partitioned, old, params)}`, params };
}

/** Set exactly one row equal to `old` to `values` (none when no row is). GENERATED ALWAYS identity columns are never updated. */
export function updateOneSql(t: ApplyTable, narrow: boolean[], partitioned: boolean, old: (string | null)[], values: (string | null)[]): Statement {
  const params: (string | null)[] = [];
  const sets = t.columns.flatMap((c, i) => {
    if (c.identityAlways) return [];
    params.push(values[i]);
    return [`${ident(c.target)} = $${params.length}::${c.type}`];
  });
  if (!sets.length) {
    // Nothing to set (only identity columns): the row stays as it is, but it must exist.
    return { sql: `SELECT 1 FROM ${target(t)} AS d WHERE ${oneRow(t, narrow, partitioned, old, params)}`, params };
  }
  return { sql: `UPDATE ${target(t)} AS d SET ${sets.join(', ')} WHERE ${oneRow(t, narrow, partitioned, old, params)}`, params };
}

/** Whether each image matches the table's row filter: one boolean column k0, k1, … per image. */
export function filterSql(t: ApplyTable, images: (string | null)[][]): Statement {
  const params: (string | null)[] = [];
  const one = (image: (string | null)[]) => {
    const cols = t.columns.map((c, i) => {
      params.push(image[i]);
      return `$${params.length}::${c.type} AS ${ident(c.source)}`;
    });
    return `(SELECT coalesce((${t.filter}), false) FROM (SELECT ${cols.join(', ')}) AS x)`;
  };
  return { sql: `SELECT ${images.map((im, k) => `${one(im)} AS k${k}`).join(', ')}`, params };
}
