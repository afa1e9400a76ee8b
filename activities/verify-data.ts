// Full data verification: every row of every copied table
// compared by key range — count plus two order-independent hash aggregates of
// each row's text, computed on both sides in parallel — then a drill-down to
// the differing keys of a range that does not match. The ranges are the full
// load's chunks over the table's row key (activities/selection.ts), rendered
// with each side's own column names (renames apply).
import type { Client } from 'pg';
import type { Config } from '../lib/config';
import { ident, qualified } from '../lib/ident';
import { withSession, withSessions } from '../lib/io/session';
import { heartbeat } from './heartbeat';
import { about } from './retry';
import { type KeyRange, rangePredicate } from './full-load/plan';
import type { CopyTable } from './full-load/tables';

export interface TableVerification {
  display: string;
  rowsSource: number;
  rowsDestination: number;
  ranges: number;
  differingRanges: number;
  /** Up to DRILL_LIMIT keys (as text) that are missing, extra or different. */
  differingKeys: { key: string[]; problem: 'missing on destination' | 'extra on destination' | 'different' }[];
  consistent: boolean;
  summary: string;
}

const DRILL_LIMIT = 20;
/** A range with more rows than this is reported as a whole, not key by key. */
const DRILL_MAX_ROWS = 200_000;

interface Side {
  client: Client;
  /** Qualified name; read with ONLY: a table's own rows, not its inheritance children's. */
  table: string;
  columns: string[];
  keyColumns: string[] | null;
  filter: string | null;
}

const rowText = (s: Side) => `md5(ROW(${s.columns.map(ident).join(', ')})::text)`;
const where = (s: Side, range: KeyRange | null, types: string[]) =>
  [range && s.keyColumns ? rangePredicate(s.keyColumns, types, range) : 'true', s.filter ? `(${s.filter})` : null].filter(Boolean).join(' AND ');

/**
 * Count and two order-independent aggregates of each row's text: the sums of
 * two differently seeded 64-bit hashes (sums rather than bit_xor, which only
 * PostgreSQL 14 and later have). hashtextextended is the hash
 * of hash partitioning, so it is the same on every server version; hashing the
 * text in the "C" collation hashes its bytes whatever the database collation.
 * (md5 of the text did the same job at three times the CPU on narrow rows.)
 */
async function digest(s: Side, range: KeyRange | null, types: string[]) {
  const r = await s.client.query<{ n: string; x: string; h: string }>(
    `SELECT count(*) AS n,
            coalesce(sum(pg_catalog.hashtextextended(t, 0)::numeric), 0)::text AS x,
            coalesce(sum(pg_catalog.hashtextextended(t, 1)::numeric), 0)::text AS h
       FROM (SELECT ROW(${s.columns.map(ident).join(', ')})::text COLLATE "C" AS t FROM ONLY ${s.table} WHERE ${where(s, range, types)}) q`,
  );
  return r.rows[0];
}

async function keyHashes(s: Side, range: KeyRange | null, types: string[]): Promise<Map<string, string>> {
  const keys = s.keyColumns!.map((c) => `${ident(c)}::text`).join(', ');
  const r = await s.client.query<{ k: string[]; h: string }>(
    `SELECT ARRAY[${keys}] AS k, ${rowText(s)} AS h FROM ONLY ${s.table} WHERE ${where(s, range, types)}`,
  );
  return new Map(r.rows.map((x) => [JSON.stringify(x.k), x.h]));
}

export async function verifyTableData(input: { config: Config; table: string }): Promise<TableVerification> {
  const { config, table } = input;
  // The data settings on both sides: each row's text, hashed, must read the same on both.
  return withSessions(config, 'verify', async (src, dst) => {
    let display = table;
    try {
      const plan = await dst.query<{ spec: CopyTable; lower_key: string[] | null; upper_key: string[] | null }>(
        `SELECT t.spec, c.lower_key, c.upper_key FROM pgshift.copy_tables t JOIN pgshift.chunks c USING (migration, table_key)
        WHERE t.migration = $1 AND t.table_key = $2 ORDER BY c.chunk`,
        [config.name, table],
      );
      if (!plan.rows.length) throw new Error(`table ${table} has no full-load plan on the destination (pgshift.copy_tables)`);
      const t = plan.rows[0].spec;
      display = t.display;
      const key = t.chunkKey;
      const types = key?.types ?? [];
      const mapKey = (c: string) => t.targetColumns[t.columns.findIndex((x) => x.name === c)];
      const S: Side = {
        client: src,
        table: qualified(t.schema, t.table),
        columns: t.columns.map((c) => c.name),
        keyColumns: key?.columns ?? null,
        filter: t.filter,
      };
      const D: Side = {
        client: dst,
        table: qualified(t.target.schema, t.target.table),
        columns: t.targetColumns,
        keyColumns: key ? key.columns.map(mapKey) : null,
        filter: null,
      };
      // Without a key, the only range both sides understand is the whole table.
      const ranges: (KeyRange | null)[] = key ? plan.rows.map((r) => ({ lower: r.lower_key, upper: r.upper_key })) : [null];

      const out: TableVerification = {
        display: t.display,
        rowsSource: 0,
        rowsDestination: 0,
        ranges: ranges.length,
        differingRanges: 0,
        differingKeys: [],
        consistent: true,
        summary: '',
      };
      for (const [i, range] of ranges.entries()) {
        const [a, b] = await Promise.all([digest(S, range, types), digest(D, range, types)]);
        out.rowsSource += Number(a.n);
        out.rowsDestination += Number(b.n);
        heartbeat({ range: i, of: ranges.length, rows: out.rowsSource });
        if (a.n === b.n && a.x === b.x && a.h === b.h) continue;
        out.differingRanges++;
        if (key && out.differingKeys.length < DRILL_LIMIT && Math.max(Number(a.n), Number(b.n)) <= DRILL_MAX_ROWS) {
          const [ka, kb] = await Promise.all([keyHashes(S, range, types), keyHashes(D, range, types)]);
          for (const [k, h] of ka) {
            if (out.differingKeys.length >= DRILL_LIMIT) break;
            if (!kb.has(k)) out.differingKeys.push({ key: JSON.parse(k), problem: 'missing on destination' });
            else if (kb.get(k) !== h) out.differingKeys.push({ key: JSON.parse(k), problem: 'different' });
          }
          for (const k of kb.keys()) {
            if (out.differingKeys.length >= DRILL_LIMIT) break;
            if (!ka.has(k)) out.differingKeys.push({ key: JSON.parse(k), problem: 'extra on destination' });
          }
        }
      }
      out.consistent = out.differingRanges === 0;
      const n = out.rowsSource.toLocaleString('en-US');
      out.summary = out.consistent
        ? `${n} rows in ${t.display} compared, consistent`
        : `${n} rows in ${t.display} compared (${out.rowsDestination.toLocaleString('en-US')} on the destination), ${out.differingRanges} of ${out.ranges} ranges differ` +
          (out.differingKeys.length
            ? `; e.g. key ${out.differingKeys
                .map((d) => `(${d.key.join(', ')}) ${d.problem}`)
                .slice(0, 3)
                .join('; ')}`
            : '');
      return out;
    } catch (err) {
      throw about(`verification of ${display}`, err);
    }
  });
}

/**
 * One page of the migration's copied tables (its full-load plan), largest
 * first: a fixed order, so the workflow's count of tables compared is a cursor.
 */
export async function listCopiedTables(input: {
  config: Config;
  offset: number;
  limit: number;
}): Promise<{ total: number; tables: { key: string; display: string }[] }> {
  return withSession(input.config, 'destination', 'verify', async (c) => {
    const r = await c.query<{ key: string; display: string; total: number }>(
      `SELECT table_key AS key, spec->>'display' AS display, count(*) OVER ()::int AS total FROM pgshift.copy_tables
        WHERE migration = $1 ORDER BY (spec->>'bytes')::bigint DESC, table_key OFFSET $2 LIMIT $3`,
      [input.config.name, input.offset, input.limit],
    );
    const total =
      r.rows[0]?.total ??
      Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM pgshift.copy_tables WHERE migration = $1', [input.config.name])).rows[0].n);
    return { total, tables: r.rows.map(({ key, display }) => ({ key, display })) };
  });
}
