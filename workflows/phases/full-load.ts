// The full-load phase of MigrationWorkflow: plan (idempotent, from the
// destination's pgshift.chunks), then copy the missing chunks, largest tables
// first, with at most parallelism.tables copies in flight. Any worker may take
// any chunk. Progress lives in the workflow state; the chunk table on the
// destination is the source of truth after a restart or continue-as-new.
// When schema migration is on, a table's keys and indexes are built as soon as
// its last chunk lands (parallelism.indexes at a time) while other tables still
// copy; the keys / post-data phases then find them done and build the rest.
import { Duration } from '@temporalio/common';
import { condition, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { Config } from '../../lib/config';
import type { MigrationState } from '../../lib/migration-state';
import type { PlannedTable } from '../../activities/full-load/plan';
import { runPool } from '../pool';

export interface FullLoadDeps {
  config: Config;
  state: MigrationState;
  acts: ReturnType<typeof proxyActivities<Activities>>;
  heartbeatTimeout: Duration;
  /** Waits while paused; false when aborting. */
  mayProceed: () => Promise<boolean>;
  show: () => void;
  continueAsNewAfterChunks?: number;
}

/** Returns 'continue-as-new' when the history got long and in-flight copies were drained. */
export async function runFullLoad(d: FullLoadDeps): Promise<'done' | 'continue-as-new'> {
  const { config, state, acts } = d;
  const planned = await acts.planFullLoad.executeWithOptions(
    { startToCloseTimeout: '1h', heartbeatTimeout: d.heartbeatTimeout, summary: `plan full load: split tables into ≤ ${config.fullLoad.chunkMb} MB key ranges` },
    [{ config, runToken: state.runToken }],
  );
  const f = (state.fullLoad ??= { startedAt: new Date().toISOString(), finishedAt: null, activeCopies: 0, retriedChunks: 0, tables: {} });
  f.activeCopies = 0;
  for (const t of planned) {
    // The destination's chunk table is authoritative for what is done.
    f.tables[t.key] = {
      display: t.display,
      chunks: t.chunks,
      chunksDone: t.done.length,
      estimatedRows: t.estimatedRows,
      estimatedBytes: t.bytes,
      rows: t.rowsDone,
      bytes: t.bytesDone,
    };
  }
  d.show();
  const queue = planned.flatMap((t) =>
    Array.from({ length: t.chunks }, (_, c) => c)
      .filter((c) => !t.done.includes(c))
      .map((c) => ({ t, c })),
  );
  let drainForNewRun = false;
  let copiedThisRun = 0;
  // Tables whose last chunk landed in this run, waiting for their index build.
  const copied: PlannedTable[] = [];
  // Tables whose keys are built: foreign keys between them are added early too.
  const indexed: string[] = [];
  let copying = true;
  let indexFailure: { err: unknown } | null = null;
  const indexLanes = Array.from({ length: config.mode.schema ? config.parallelism.indexes : 0 }, async () => {
    for (;;) {
      await condition(() => copied.length > 0 || !copying);
      if (state.abortRequested) return;
      const t = copied.shift();
      if (!t) {
        if (copying) continue; // another lane took it
        return;
      }
      await acts.buildTableIndexes.executeWithOptions(
        { startToCloseTimeout: '24h', heartbeatTimeout: d.heartbeatTimeout, summary: `build keys and indexes of ${t.target} (copied)` },
        [{ config, runToken: state.runToken, table: t.target, indexed: [...indexed] }],
      );
      indexed.push(t.target);
    }
  }).map((lane) => lane.catch((err) => void (indexFailure ??= { err })));
  const left = await runPool(
    queue,
    config.parallelism.tables,
    async ({ t, c }) => {
      f.activeCopies++;
      try {
        const r = await acts.copyChunk.executeWithOptions(
          { startToCloseTimeout: '24h', heartbeatTimeout: d.heartbeatTimeout, summary: `copy ${t.display} chunk ${c + 1}/${t.chunks}` },
          [{ config, runToken: state.runToken, table: t.key, chunk: c, live: { throttle: state.throttle, activeCopies: f.activeCopies } }],
        );
        const p = f.tables[t.key];
        p.chunksDone++;
        if (p.chunksDone === t.chunks) copied.push(t);
        p.rows += r.rows;
        p.bytes += r.bytes;
        if (r.skipped) f.retriedChunks++;
        copiedThisRun++;
      } finally {
        f.activeCopies--;
      }
      d.show();
    },
    async () => {
      if (!(await d.mayProceed())) return true;
      // A long load continues as new between chunks; in-flight ones finish first.
      drainForNewRun ||= workflowInfo().continueAsNewSuggested || copiedThisRun >= (d.continueAsNewAfterChunks ?? Infinity);
      return drainForNewRun;
    },
  );
  copying = false;
  if (!drainForNewRun && !left.length && !state.abortRequested) f.finishedAt = new Date().toISOString();
  await Promise.all(indexLanes);
  if (indexFailure) throw (indexFailure as { err: unknown }).err;
  return drainForNewRun ? 'continue-as-new' : 'done';
}
