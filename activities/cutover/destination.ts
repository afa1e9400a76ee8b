// The cutover's steps on the destination: refresh the materialized views this
// migration created (they were filled once, after the full load, and are stale
// by now), and the final fence that makes the cutover irreversible for every
// activity of the migration: from then on no run, however delayed, writes there.
import type { Config } from '../../lib/config';
import { parseQualifiedName, qualified } from '../../lib/ident';
import { withSession } from '../../lib/io/session';
import { ensureControlSchema, fence, fenced } from '../control';
import { heartbeat } from '../heartbeat';
import { about } from '../retry';

export async function refreshMaterializedViews(input: { config: Config; runToken: string }): Promise<{ refreshed: string[]; skipped: string[] }> {
  const { config, runToken } = input;
  return withSession(config, 'destination', 'cutover', async (dst) => {
    // In creation order: a view built on another is refreshed after it.
    const views = await dst
      .query<{ object: string }>(
        `SELECT object FROM pgshift.schema_statements WHERE migration = $1 AND state = 'applied' AND kind = 'materialized-view' ORDER BY seq`,
        [config.name],
      )
      .catch((e) => {
        if ((e as { code?: string }).code === '42P01') return { rows: [] as { object: string }[] }; // no schema was migrated
        throw e;
      });
    const refreshed: string[] = [];
    const skipped: string[] = [];
    for (const { object } of views.rows) {
      const name = qualified(...(parseQualifiedName(object, 2) as [string, string]));
      const populated = await dst.query<{ p: boolean | null }>(`SELECT (SELECT relispopulated FROM pg_class WHERE oid = to_regclass($1)) AS p`, [name]);
      // Left unpopulated on purpose (WITH NO DATA on the source), or dropped since: not ours to fill.
      if (!populated.rows[0].p) {
        skipped.push(object);
        continue;
      }
      heartbeat({ refreshing: object });
      await fenced(dst, config.name, runToken, () => dst.query(`REFRESH MATERIALIZED VIEW ${name}`)).catch((e) =>
        Promise.reject(about(`REFRESH MATERIALIZED VIEW ${object} on the destination`, e)),
      );
      refreshed.push(object);
    }
    return { refreshed, skipped };
  });
}

/** Fence the destination for the cutover: every write of the migration fails from now on, even a retry days later. */
export async function fenceDestination(input: { config: Config }): Promise<void> {
  await withSession(input.config, 'destination', 'cutover', async (c) => {
    await ensureControlSchema(c);
    await fence(c, input.config.name, 'cutover');
  });
}
