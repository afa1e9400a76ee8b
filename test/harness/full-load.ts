// Direct calls of the full-load activities for tests that drive it step by step.
import { prepareSource } from '../../activities/capture/prepare-source';
import { copyChunk } from '../../activities/full-load/chunk';
import { planFullLoad } from '../../activities/full-load/plan';
import { applySchemaStage, planSchema } from '../../activities/schema';
import type { Config } from '../../lib/config';
import type { PageTable } from '../../lib/full-load-progress';

/** Plan the full load and return every table with chunks to copy, in copy order (one page holding all). */
export async function planAllTables(config: Config, runToken: string): Promise<PageTable[]> {
  return (await planFullLoad({ config, runToken, after: null, pageChunks: Number.MAX_SAFE_INTEGER, backlog: false })).tables;
}

/**
 * An online migration's steps up to the apply, by direct activity calls: slot and publication on the
 * source, the schema before data, keys, every chunk copied, then post-data. Returns what prepare returned.
 */
export async function migrateUpToApply(config: Config, runToken: string) {
  const prepared = await prepareSource({ config, runToken });
  await planSchema({ config, runToken });
  await applySchemaStage({ config, runToken, stage: 'before-data' });
  await applySchemaStage({ config, runToken, stage: 'keys' });
  for (const t of await planAllTables(config, runToken)) {
    for (const chunk of t.pending) await copyChunk({ config, runToken, table: t.key, chunk }, { current: async () => null });
  }
  await applySchemaStage({ config, runToken, stage: 'post-data' });
  return prepared;
}
