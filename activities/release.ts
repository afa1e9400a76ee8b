// `pgshift release`: remove what a migration left behind when its workflow
// could not clean up (terminated, timed out, its worker gone for good). On the
// source: the slot (a slot nobody consumes holds WAL until the disk fills),
// the publication, the heartbeat and control schema, and a cutover's write
// fence. With `destination`, the migration's rows in the destination's control
// schema too (its fencing row: the name can then be used again), and the
// schema once no migration is left in it. Safe to run any number of times.
import type { Config } from '../lib/config';
import { captureSlotName } from '../lib/capture/names';
import { ident } from '../lib/ident';
import { withSession } from '../lib/io/session';
import { CONTROL_SCHEMA } from './control';
import { releaseSource } from './capture/prepare-source';

export interface ReleaseReport {
  /** What was removed, one phrase per object; empty when nothing was left. */
  removed: string[];
}

/** The destination's control tables that hold rows per migration. */
async function controlTables(c: import('pg').Client): Promise<string[]> {
  const r = await c.query<{ t: string }>(
    `SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attname = 'migration' AND NOT a.attisdropped ORDER BY 1`,
    [CONTROL_SCHEMA],
  );
  return r.rows.map((x) => x.t);
}

export async function releaseMigration(config: Config, opts: { destination?: boolean } = {}): Promise<ReleaseReport> {
  const removed: string[] = [];
  const s = await releaseSource({ config });
  if (s.droppedSlot) removed.push(`source: replication slot ${captureSlotName(config)}`);
  if (s.droppedPublication) removed.push(`source: publication pgshift_${config.name}`);
  if (s.fence === 'lifted') removed.push('source: the cutover write fence (default_transaction_read_only restored)');
  if (s.droppedSchema) removed.push('source: control schema pgshift (heartbeat)');
  if (opts.destination) {
    await withSession(config, 'destination', 'abort', async (c) => {
      const tables = await controlTables(c);
      let rows = 0;
      for (const t of tables) rows += (await c.query(`DELETE FROM ${ident(CONTROL_SCHEMA)}.${ident(t)} WHERE migration = $1`, [config.name])).rowCount ?? 0;
      if (rows) removed.push(`destination: ${rows} control rows of migration ${config.name} (its fencing row included)`);
      if (tables.length) {
        let left = 0;
        for (const t of tables) left += (await c.query(`SELECT 1 FROM ${ident(CONTROL_SCHEMA)}.${ident(t)} LIMIT 1`)).rowCount ?? 0;
        if (!left) {
          await c.query(`DROP SCHEMA ${ident(CONTROL_SCHEMA)} CASCADE`);
          removed.push('destination: control schema pgshift');
        }
      }
    });
  }
  return { removed };
}
