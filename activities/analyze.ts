// The analyze phase: ANALYZE every copied table on the destination, so it
// plans well from the first query.
import type { Config } from '../lib/config';
import { qualified } from '../lib/ident';
import { withSession } from '../lib/io/session';
import { about } from './retry';

/** ANALYZE every copied table so the destination plans well from the first query. */
export async function analyzeTables(input: { config: Config }): Promise<{ tables: number }> {
  return withSession(input.config, 'destination', 'analyze', async (dst) => {
    // A table analyzed after its last chunk landed (right after its index build) is not analyzed again.
    const r = await dst.query<{ schema: string; table: string; fresh: boolean }>(
      `SELECT t.spec->'target'->>'schema' AS schema, t.spec->'target'->>'table' AS table,
              coalesce(greatest(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid))
                       > (SELECT max(copied_at) FROM pgshift.chunks k WHERE k.migration = t.migration AND k.table_key = t.table_key), false) AS fresh
         FROM pgshift.copy_tables t
         LEFT JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', t.spec->'target'->>'schema', t.spec->'target'->>'table'))
        WHERE t.migration = $1`,
      [input.config.name],
    );
    for (const t of r.rows) {
      if (t.fresh) continue;
      const name = qualified(t.schema, t.table);
      await dst.query(`ANALYZE ${name}`).catch((err) => Promise.reject(about(`ANALYZE ${name}`, err)));
    }
    return { tables: r.rowCount ?? 0 };
  });
}
