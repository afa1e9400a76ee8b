// Independent content comparison for tests: every row rendered as text by the
// server with identical session settings on both sides, ordered by the key.
// Deliberately shares no code with pgshift's own verification.
import type { Side } from './env';

const SETTINGS = "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; SET extra_float_digits = 3; SET bytea_output = 'hex';";

export async function tableRows(side: Side, qualifiedTable: string, orderBy: string): Promise<string[]> {
  const c = await side.cluster.connect(side.database);
  try {
    await c.query(SETTINGS);
    const r = await c.query<{ r: string }>(`SELECT t::text AS r FROM ${qualifiedTable} t ORDER BY ${orderBy}`);
    return r.rows.map((x) => x.r);
  } finally {
    await c.end();
  }
}

/** First difference between two row lists, or null. */
export function firstDifference(a: string[], b: string[]): string | null {
  if (a.length !== b.length) return `row counts differ: ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `row ${i}: ${a[i].slice(0, 300)} ≠ ${b[i].slice(0, 300)}`;
  return null;
}
