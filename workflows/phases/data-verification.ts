// Data verification, shared by MigrationWorkflow and VerificationWorkflow:
// every copied table compared row by row, parallelism.tables at a time, in the
// size order of the destination's table list, read a page at a time. The
// progress is a cursor into that list (lib/verification-progress.ts), so a run
// that must stop part-way (continue-as-new) cancels the comparisons running,
// waits for them, and the next run resumes after the last table counted.
import type { Duration } from '@temporalio/common';
import { CancellationScope } from '@temporalio/workflow';
import type { Config } from '../../lib/config';
import { newDataVerification, VerificationCursor, type DataVerification } from '../../lib/verification-progress';
import { alertOnMismatch } from '../monitoring';
import { ABORTED, allLanes, CONTINUE_AS_NEW, DONE, endedByCancel, type ActivityProxies, type PhaseOutcome } from './contract';

/** Tables read from the destination's list at a time. */
const PAGE_TABLES = 100;

export interface VerifyDeps {
  config: Config;
  acts: ActivityProxies;
  heartbeatTimeout: Duration;
  /** Progress of an earlier run to resume (continue-as-new); a new verification when absent. */
  resume?: DataVerification | null;
  /** Receives the verification object as it fills (for status and UI). */
  onStart?: (v: DataVerification) => void;
  onProgress?: () => void;
  /** Waits while paused; false when aborting. */
  mayProceed?: () => Promise<boolean>;
  /** A continue-as-new outcome stops the comparisons part-way. */
  stopReason?: () => PhaseOutcome | null;
  /** Wait for the mismatch alert (a workflow that ends next); otherwise it is sent in the background. */
  awaitAlert?: boolean;
  /** Compare only these tables (in this order) instead of every copied table. */
  tables?: { key: string; display: string }[];
  /** Re-check differing ranges once the apply has passed them (default: when changes may be flowing); false at lag zero. */
  recheck?: boolean;
}

export async function runDataVerification(d: VerifyDeps): Promise<{ outcome: PhaseOutcome; verification: DataVerification }> {
  const { config, acts } = d;
  const v = d.resume && !d.resume.finishedAt ? d.resume : newDataVerification(new Date().toISOString());
  d.onStart?.(v);
  const cursor = new VerificationCursor(v);

  const queue: { key: string; display: string; index: number }[] = [];
  let offset = v.compared;
  let exhausted = false;
  if (d.tables) {
    v.total = d.tables.length;
    d.tables.slice(offset).forEach((t, i) => queue.push({ ...t, index: offset + i }));
    exhausted = true;
  }
  let reading: Promise<void> | null = null;
  const readPage = async () => {
    const page = await acts.listCopiedTables.executeWithOptions({ startToCloseTimeout: '5m', summary: `list tables to verify from ${offset + 1}` }, [
      { config, offset, limit: PAGE_TABLES },
    ]);
    v.total = page.total;
    page.tables.forEach((t, i) => queue.push({ ...t, index: offset + i }));
    offset += page.tables.length;
    exhausted = page.tables.length < PAGE_TABLES;
  };
  const nextTable = async () => {
    while (!queue.length && !exhausted) {
      reading ??= readPage().finally(() => (reading = null));
      await reading;
    }
    return queue.shift() ?? null;
  };

  let stopped: PhaseOutcome | null = null;
  const mustStop = async () => {
    if (d.mayProceed && !(await d.mayProceed())) stopped = ABORTED;
    else if (d.stopReason?.()?.kind === 'continue-as-new') stopped = CONTINUE_AS_NEW;
    return stopped !== null;
  };
  const comparisons = new CancellationScope();
  const lane = () =>
    comparisons.run(async () => {
      for (;;) {
        if (await mustStop()) return;
        const t = await nextTable();
        if (!t) return;
        const r = await acts.verifyTableData.executeWithOptions(
          { startToCloseTimeout: '24h', heartbeatTimeout: d.heartbeatTimeout, summary: `verify rows of ${t.display}` },
          [{ config, table: t.key, ...(d.recheck === false ? { recheck: false } : {}) }],
        );
        cursor.done(t.index, t.key, {
          display: r.display,
          rowsSource: r.rowsSource,
          rowsDestination: r.rowsDestination,
          consistent: r.consistent,
          differingKeys: r.differingKeys,
          summary: r.summary,
        });
        d.onProgress?.();
        // A lane that sees the stop cancels the comparisons still running: they can take long, and the next run repeats them.
        if (await mustStop()) comparisons.cancel();
      }
    });
  try {
    await allLanes(Array.from({ length: Math.max(1, config.parallelism.tables) }, lane));
  } catch (err) {
    if (!(stopped !== null && endedByCancel(err))) throw err;
  }
  if (stopped) return { outcome: stopped, verification: v };
  v.finishedAt = new Date().toISOString();
  d.onProgress?.();
  if (v.inconsistent) {
    const sent = alertOnMismatch(acts, config, v);
    if (d.awaitAlert) await sent;
  }
  return { outcome: DONE, verification: v };
}
