// Direct calls of the full-load activities for tests that drive it step by step.
import { planFullLoad } from '../../activities/full-load/plan';
import type { Config } from '../../lib/config';
import type { PageTable } from '../../lib/full-load-progress';

/** Plan the full load and return every table with chunks to copy, in copy order (one page holding all). */
export async function planAllTables(config: Config, runToken: string): Promise<PageTable[]> {
  return (await planFullLoad({ config, runToken, after: null, pageChunks: Number.MAX_SAFE_INTEGER, backlog: false })).tables;
}
