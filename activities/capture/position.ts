// The source's current WAL position: taken once the last chunk is copied, it
// is the consistency point (every chunk's snapshot is older); at cutover, the
// position the apply must reach. The insert position, not pg_current_wal_lsn()
// (the write position, often a page behind): a commit that has happened may
// not be written out yet, and it must be covered.
import type { Config } from '../../lib/config';
import { withSession } from '../../lib/io/session';

export async function sourceWalPosition(input: { config: Config }): Promise<{ lsn: string }> {
  return withSession(input.config, 'source', 'capture', async (src) => {
    const r = await src.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    return { lsn: r.rows[0].lsn };
  });
}
