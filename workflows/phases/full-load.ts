// The full-load phase of MigrationWorkflow. The plan (made once, idempotent)
// lives on the destination in pgshift.chunks; the workflow reads it a page of
// whole tables at a time, in copy order (the most index-build work first, then
// the largest), and copies the pending chunks with at most parallelism.tables
// copies in flight, on any worker. The next page is read when the queue runs
// dry, so the state never holds more than a page.
// When schema migration is on, a table's keys and indexes are built as soon as
// its last chunk lands (parallelism.indexes at a time) while other tables still
// copy; the keys / post-data phases then find them done and build the rest.
// A long load continues as new between chunks: running copies finish (a chunk
// is short), running index builds are cancelled (the next run builds them again,
// from the statements not yet applied).
import { CancellationScope, condition } from '@temporalio/workflow';
import { FullLoadTracker, newFullLoadProgress, type FullLoadPage, type PageTable } from '../../lib/full-load-progress';
import { ABORTED, allLanes, CONTINUE_AS_NEW, DONE, endedByCancel, type PhaseContext, type PhaseOutcome } from './contract';

/** A page of the plan holds whole tables until it has this many chunks. */
const PAGE_CHUNKS = 200;

export async function runFullLoad(ctx: PhaseContext): Promise<PhaseOutcome> {
  const { config, state, acts } = ctx;
  const f = (state.fullLoad ??= newFullLoadProgress(new Date().toISOString()));
  f.activeCopies = 0;
  const tracker = new FullLoadTracker(f);
  const pageChunks = ctx.fullLoadPageChunks ?? PAGE_CHUNKS;

  // Tables whose last chunk landed, waiting for their index build (destination names).
  const copied: string[] = [];
  // Chunks to copy, a page at a time; one page read in flight at most.
  const queue: { t: PageTable; c: number }[] = [];
  let after: number | null = null;
  let firstPage = true;
  let exhausted = false;
  let reading: Promise<void> | null = null;
  const readPage = async () => {
    const page: FullLoadPage = await acts.planFullLoad.executeWithOptions(
      {
        startToCloseTimeout: '1h',
        heartbeatTimeout: ctx.heartbeatTimeout,
        summary: firstPage ? `plan full load: split tables into ≤ ${config.fullLoad.chunkMb} MB key ranges` : `next ${pageChunks} chunks of the full-load plan`,
      },
      [{ config, runToken: state.runToken, after, pageChunks, backlog: firstPage && config.mode.schema }],
    );
    if (firstPage) {
      tracker.startRun(page);
      // Tables copied by an earlier run whose keys are not built yet.
      copied.push(...page.toIndex);
      firstPage = false;
    }
    for (const t of page.tables) {
      tracker.queued(t);
      for (const c of t.pending) queue.push({ t, c });
    }
    after = page.last;
    exhausted = page.last === null;
    ctx.show();
  };
  const nextChunk = async () => {
    while (!queue.length && !exhausted) {
      reading ??= readPage().finally(() => (reading = null));
      await reading;
    }
    return queue.shift() ?? null;
  };

  let copying = true;
  let indexFailure: { err: unknown } | null = null;
  const indexes = new CancellationScope();
  const indexLanes = Array.from({ length: config.mode.schema ? config.parallelism.indexes : 0 }, () =>
    indexes
      .run(async () => {
        for (;;) {
          await condition(() => copied.length > 0 || !copying);
          if (state.abortRequested) return;
          const table = copied.shift();
          if (table === undefined) {
            if (copying) continue; // another lane took it
            return;
          }
          await acts.buildTableIndexes.executeWithOptions(
            { startToCloseTimeout: '24h', heartbeatTimeout: ctx.heartbeatTimeout, summary: `build keys and indexes of ${table} (copied)` },
            [{ config, runToken: state.runToken, table }],
          );
        }
      })
      .catch((err) => void (indexFailure ??= { err })),
  );

  let handOver = false;
  let copiedThisRun = 0;
  const mustStop = async () => {
    if (!(await ctx.mayProceed())) return true;
    handOver ||= ctx.stopReason()?.kind === 'continue-as-new' || copiedThisRun >= (ctx.continueAsNewAfterChunks ?? Infinity);
    return handOver;
  };
  const copyLane = async () => {
    for (;;) {
      if (await mustStop()) return;
      const next = await nextChunk();
      if (!next) return;
      const { t, c } = next;
      f.activeCopies++;
      tracker.started(t.key);
      try {
        const r = await acts.copyChunk.executeWithOptions(
          { startToCloseTimeout: '24h', heartbeatTimeout: ctx.heartbeatTimeout, summary: `copy ${t.display} chunk ${c + 1}/${t.chunks}` },
          [{ config, runToken: state.runToken, table: t.key, chunk: c, live: { throttle: state.throttle, activeCopies: f.activeCopies } }],
        );
        if (tracker.landed(t.key, r) && config.mode.schema) copied.push(t.target);
        if (r.skipped) f.retriedChunks++;
        copiedThisRun++;
      } finally {
        f.activeCopies--;
      }
      ctx.show();
    }
  };
  try {
    await allLanes(Array.from({ length: Math.max(1, config.parallelism.tables) }, copyLane));
  } catch (err) {
    // A failed copy fails the phase, once the index builds are stopped too.
    copying = false;
    indexes.cancel();
    await Promise.all(indexLanes);
    throw err;
  }
  copying = false;
  const finished = exhausted && !queue.length && !handOver && !state.abortRequested;
  if (finished) f.finishedAt = new Date().toISOString();
  // Handing over: the index builds still running are cancelled (and awaited); the next run's plan lists their tables again.
  if (handOver) indexes.cancel();
  await Promise.all(indexLanes);
  if (indexFailure && !(handOver && endedByCancel((indexFailure as { err: unknown }).err))) throw (indexFailure as { err: unknown }).err;
  ctx.show();
  return state.abortRequested ? ABORTED : handOver ? CONTINUE_AS_NEW : DONE;
}
