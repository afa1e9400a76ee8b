// The set-based statements that apply a collapsed batch of one table on the
// destination. Every value travels as text in a text[] parameter and is cast
// to the destination column's type by the server, so no value is ever
// converted by JavaScript. Names are always quoted. Row filters are evaluated
// on the destination, over the row image with the SOURCE column names (the
// filter is written in source terms), in the same statement as the write.
// Pure: builds SQL text only.
import { ident, qualified } from '../ident';
import type { ChunkSnapshot } from './snapshot';

export interface ApplyColumn {
  /** Column name on the source (what the filter and the stream use). */
  source: string;
  /** Column name on the destination. */
  target: string;
  /** Destination type as format_type() renders it, the cast of the text value. */
  type: string;
  /** GENERATED ALWAYS AS IDENTITY on the destination: inserted with OVERRIDING SYSTEM VALUE, never updated (the source cannot change it either). */
  identityAlways?: boolean;
}

export interface ApplyTable {
  display: string;
  source: { schema: string; table: string };
  target: { schema: string; table: string };
  /** In the source relation's column order. */
  columns: ApplyColumn[];
  /** Indexes into columns of the key (primary key or the non-null unique key). */
  key: number[];
  /** Source type of each key column (to look rows up on the source). */
  sourceKeyTypes: string[];
  filter: string | null;
  /** Set for a table without row key (key and sourceKeyTypes empty): its changes go through activities/capture/apply-keyless.ts. */
  keyless?: KeylessTable;
}

/** What the apply knows of a table without row key. */
export interface KeylessTable {
  /** The snapshots its copy was taken at (one per chunk); none when it was not copied (incremental-only). */
  snapshots: ChunkSnapshot[];
  /** Per column: also compared with `=` (an index may narrow the search; lib/capture/keyless-sql.ts). */
  narrow: boolean[];
  /** Partitioned on the destination: rows are named by (tableoid, ctid). */
  partitioned: boolean;
  /** Created on the source during change capture (DDL replication): never copied, every change of it is in the stream. */
  created?: boolean;
}

const KEEP = ident('pgshift$keep');
const ORD = ident('pgshift$i');
const u = (i: number) => ident(`c${i}`);
const arrays = (n: number, from = 1) => Array.from({ length: n }, (_, j) => `$${from + j}::text[]`).join(', ');

const target = (t: ApplyTable) => qualified(t.target.schema, t.target.table);
const keyJoin = (t: ApplyTable, left: string, right: (i: number) => string) =>
  t.key.map((i) => `${left}.${ident(t.columns[i].target)} = ${right(i)}`).join(' AND ');
const cast = (t: ApplyTable, i: number, alias = 'u') => `${alias}.${u(i)}::${t.columns[i].type}`;
const filterOf = (t: ApplyTable) => `coalesce((${t.filter}), false)`;

/** DELETE by key. Parameters: one text[] per key column. */
export function deleteSql(t: ApplyTable): string {
  return (
    `DELETE FROM ${target(t)} AS d USING unnest(${arrays(t.key.length)}) AS u(${t.key.map(u).join(', ')}) ` + `WHERE ${keyJoin(t, 'd', (i) => cast(t, i))}`
  );
}

const overriding = (t: ApplyTable) => (t.columns.some((c) => c.identityAlways) ? ' OVERRIDING SYSTEM VALUE' : '');
const updatable = (t: ApplyTable, i: number) => !t.key.includes(i) && !t.columns[i].identityAlways;

function conflictClause(t: ApplyTable): string {
  const keys = t.key.map((i) => ident(t.columns[i].target)).join(', ');
  const rest = t.columns.filter((_, i) => updatable(t, i));
  if (!rest.length) return `ON CONFLICT (${keys}) DO NOTHING`;
  return `ON CONFLICT (${keys}) DO UPDATE SET ${rest.map((c) => `${ident(c.target)} = EXCLUDED.${ident(c.target)}`).join(', ')}`;
}

/**
 * Upsert of complete images; with a filter, images that do not match delete
 * their key instead. Parameters: one text[] per column.
 */
export function upsertSql(t: ApplyTable): string {
  const n = t.columns.length;
  const cols = t.columns.map((c) => ident(c.target)).join(', ');
  const from = `unnest(${arrays(n)}) AS u(${t.columns.map((_, i) => u(i)).join(', ')})`;
  if (!t.filter) {
    return `INSERT INTO ${target(t)} (${cols})${overriding(t)} SELECT ${t.columns.map((_, i) => cast(t, i)).join(', ')} FROM ${from} ${conflictClause(t)}`;
  }
  const inner = `SELECT ${t.columns.map((c, i) => `${cast(t, i)} AS ${ident(c.source)}`).join(', ')} FROM ${from}`;
  return (
    `WITH s AS (SELECT x.*, ${filterOf(t)} AS ${KEEP} FROM (${inner}) AS x), ` +
    `ins AS (INSERT INTO ${target(t)} (${cols})${overriding(t)} SELECT ${t.columns.map((c) => `s.${ident(c.source)}`).join(', ')} FROM s WHERE s.${KEEP} ${conflictClause(t)}) ` +
    `DELETE FROM ${target(t)} AS d USING s WHERE NOT s.${KEEP} AND ${keyJoin(t, 'd', (i) => `s.${ident(t.columns[i].source)}`)}`
  );
}

/**
 * Values of `columns` of the rows at the given keys, as text: the rows a
 * partial image takes its unchanged values from. Parameters: one text[] per
 * key column. Rows: i (1-based position in the arrays) and m0…: the values.
 */
export function readColumnsSql(t: ApplyTable, columns: number[], side: 'destination' | 'source'): string {
  const name = side === 'destination' ? target(t) : qualified(t.source.schema, t.source.table);
  const col = (i: number) => ident(side === 'destination' ? t.columns[i].target : t.columns[i].source);
  const keyCast = (i: number) => (side === 'destination' ? cast(t, i) : `u.${u(i)}::${t.sourceKeyTypes[t.key.indexOf(i)]}`);
  return (
    `SELECT u.${ORD}::int AS i${columns.map((c, j) => `, r.${col(c)}::text AS m${j}`).join('')} ` +
    `FROM unnest(${arrays(t.key.length)}) WITH ORDINALITY AS u(${t.key.map(u).join(', ')}, ${ORD}) ` +
    `JOIN ${name} AS r ON ${t.key.map((i) => `r.${col(i)} = ${keyCast(i)}`).join(' AND ')}`
  );
}

/**
 * Partial images (same set of present columns): update the present columns
 * of rows that exist, keeping the rest. With a filter, evaluated on the row
 * as it will be (present values over the current ones), a row that no longer
 * matches is deleted. Parameters: one text[] per present column (key columns
 * included), in column order. Returns i of every image whose row exists.
 */
export function partialUpdateSql(t: ApplyTable, present: number[]): string {
  const from = `unnest(${arrays(present.length)}) WITH ORDINALITY AS u(${present.map(u).join(', ')}, ${ORD})`;
  const sets = present.filter((i) => updatable(t, i));
  const join = keyJoin(t, 'd', (i) => cast(t, i));
  if (!t.filter) {
    if (!sets.length) return `SELECT u.${ORD}::int AS i FROM ${from} JOIN ${target(t)} AS d ON ${join}`;
    return (
      `UPDATE ${target(t)} AS d SET ${sets.map((i) => `${ident(t.columns[i].target)} = ${cast(t, i)}`).join(', ')} ` +
      `FROM ${from} WHERE ${join} RETURNING u.${ORD}::int AS i`
    );
  }
  const merged = t.columns.map((c, i) => (present.includes(i) ? `${cast(t, i)} AS ${ident(c.source)}` : `d.${ident(c.target)} AS ${ident(c.source)}`));
  const sKey = keyJoin(t, 'd', (i) => `s.${ident(t.columns[i].source)}`);
  return (
    `WITH s AS (SELECT x.*, ${filterOf(t)} AS ${KEEP} FROM (SELECT u.${ORD} AS ${ORD}, ${merged.join(', ')} FROM ${from} JOIN ${target(t)} AS d ON ${join}) AS x), ` +
    (sets.length
      ? `upd AS (UPDATE ${target(t)} AS d SET ${sets.map((i) => `${ident(t.columns[i].target)} = s.${ident(t.columns[i].source)}`).join(', ')} FROM s WHERE s.${KEEP} AND ${sKey}), `
      : '') +
    `del AS (DELETE FROM ${target(t)} AS d USING s WHERE NOT s.${KEEP} AND ${sKey}) ` +
    `SELECT s.${ORD}::int AS i FROM s`
  );
}

const NEEDS_ESCAPE = /["\\]/;

/**
 * A text[] parameter as its array literal (what node-postgres would send for
 * the JS array, built in one pass): every element double-quoted, `"` and `\`
 * escaped, NULL bare. The server parses it as $n::text[].
 */
export function textArrayLiteral(values: readonly (string | null)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i) out += ',';
    if (v === null) out += 'NULL';
    else out += NEEDS_ESCAPE.test(v) ? `"${v.replace(/[\\"]/g, '\\$&')}"` : `"${v}"`;
  }
  return out + '}';
}

export function truncateSql(tables: ApplyTable[], restartIdentity: boolean, cascade: boolean): string {
  return `TRUNCATE TABLE ${tables.map(target).join(', ')}${restartIdentity ? ' RESTART IDENTITY' : ''}${cascade ? ' CASCADE' : ''}`;
}
