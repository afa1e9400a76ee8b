// The cutover phase: from a running apply to a destination the application can
// use, in steps that each show in status and in the Temporal UI as they happen:
//
//   fence              cutover.fence read-only: the source refuses new writes
//                      (every role); none: the position is only noted — the
//                      application must have stopped writing (the apply keeps
//                      going meanwhile, so little is left to drain)
//   stop-apply         the background apply round stops at a destination commit
//   drain              the apply runs until it has applied the fence's position
//   sequences          every sequence set from the source (identity ones too)
//   materialized-views refreshed on the destination
//   triggers           created after the consistency point (objects.triggers);
//                      they fire from now on, for the application's writes
//   verify             cutover.verify: full (every row) / changed / none
//   fence-check        nothing of a migrated table committed after the fence
//   ready              the write downtime is measured fence → here
//   release-source     slot, publication, heartbeat, control schema dropped
//                      (the read-only fence stays: the application has moved)
//   fence-destination  no activity of this migration, however delayed, can
//                      write to the destination again
//
// Before `ready` every step can be undone: a failed step lifts the fence, the
// phase goes back to incremental and the apply goes on (the operator reads
// why in status and asks again). From `ready` on, failures are the
// migration's. A run that continues as new in the middle resumes at the first
// step not done (each step is recorded in the state as it ends).
import { CancellationScope, isCancellation, patched } from '@temporalio/workflow';
import { recordApplyRound } from '../../lib/capture-progress';
import { cutoverStep, type CutoverProgress, type CutoverStepName } from '../../lib/cutover-progress';
import { recordChangedTables } from '../../lib/migration-state';
import { rootCause } from '../../lib/failure';
import { DONE, type PhaseContext, type PhaseOutcome } from './contract';
import { runDataVerification } from './data-verification';

const now = () => new Date().toISOString();
const seconds = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 1000;

/** A step's outcome when it does not simply succeed. */
class Skipped {
  constructor(readonly why: string) {}
}

export async function runCutover(ctx: PhaseContext): Promise<PhaseOutcome> {
  const { config, state, acts, src, dst, heartbeatTimeout } = ctx;
  const c: CutoverProgress = state.cutover!;
  const capture = state.capture!;

  const step = async (name: CutoverStepName, fn: () => Promise<string | Skipped>) => {
    const s = cutoverStep(c, name);
    if (s.status === 'done' || s.status === 'skipped') return;
    s.status = 'running';
    s.startedAt = now();
    ctx.show();
    try {
      const r = await fn();
      s.status = r instanceof Skipped ? 'skipped' : 'done';
      s.detail = r instanceof Skipped ? r.why : r;
    } catch (err) {
      s.status = 'failed';
      s.detail = rootCause(err).message;
      throw err;
    } finally {
      s.endedAt = now();
      ctx.show();
    }
  };
  const fenced = c.fence === 'read-only';
  const drain = (stopAtLsn: string, summary: string) =>
    acts.applyChanges.executeWithOptions({ startToCloseTimeout: '2h', heartbeatTimeout, summary }, [
      { config, runToken: state.runToken, stopAtLsn, fenceLsn: fenced ? c.fenceLsn! : undefined, rowsPerSecond: state.throttle.incrementalRowsPerSecond },
    ]);

  try {
    await step('fence', async () => {
      if (!fenced) {
        c.fenceLsn = (await acts.sourceWalPosition.executeWithOptions({ startToCloseTimeout: '5m', summary: `WAL position of ${src}` }, [{ config }])).lsn;
        c.fencedAt = now();
        return new Skipped(`fence none: the application must have stopped writing; source position noted at LSN ${c.fenceLsn}`);
      }
      const r = await acts.fenceSource.executeWithOptions(
        { startToCloseTimeout: '1h', heartbeatTimeout, summary: `write fence on ${src}: read-only for every role` },
        [{ config, graceSeconds: config.cutover.graceSeconds }],
      );
      c.fenceLsn = r.fenceLsn;
      c.fencedAt = cutoverStep(c, 'fence').startedAt;
      return (
        `source read-only for every role; ${r.terminatedIdle} idle sessions ended` +
        (r.terminatedAfterGrace ? `, ${r.terminatedAfterGrace} ended after the ${config.cutover.graceSeconds} s grace` : '') +
        (r.notEnded?.length
          ? `; ⚠ ${r.notEnded.length} sessions the source role may not end (${r.notEnded.slice(0, 5).join(', ')}): grant it pg_signal_backend, or end them; a write they make fails the fence check`
          : '') +
        `; fence at LSN ${r.fenceLsn}`
      );
    });
    await step('stop-apply', async () => {
      await ctx.apply.stop();
      return `the background apply stopped at ${capture.appliedLsn ?? capture.startLsn}`;
    });
    await step('drain', async () => {
      const r = await drain(c.fenceLsn!, `drain the apply to ${c.fenceLsn} on ${dst}`);
      recordApplyRound(capture, r, now());
      recordChangedTables(state, r.changedTables);
      // Fenced, nothing commits after the fence: once it is applied, the destination is not behind at all.
      c.finalLagSeconds = fenced ? 0 : r.lagSeconds;
      return `applied up to ${r.appliedLsn} (${r.changes.toLocaleString('en-US')} changes in ${r.seconds.toFixed(1)} s)`;
    });
    await step('sequences', async () => {
      if (!config.mode.full && !config.mode.schema) return new Skipped('no schema or data is migrated');
      const r = await acts.syncSequences.executeWithOptions({ startToCloseTimeout: '30m', heartbeatTimeout, summary: `set sequences on ${dst} from ${src}` }, [
        { config, runToken: state.runToken },
      ]);
      state.sequences = r.sequences;
      return `${r.sequences} sequences set from the source (setval with is_called)`;
    });
    await step('materialized-views', async () => {
      if (!config.mode.schema) return new Skipped('the schema is not migrated (mode.schema false)');
      const r = await acts.refreshMaterializedViews.executeWithOptions(
        { startToCloseTimeout: '6h', heartbeatTimeout, summary: `refresh materialized views on ${dst}` },
        [{ config, runToken: state.runToken }],
      );
      return `${r.refreshed.length} refreshed${r.skipped.length ? `, ${r.skipped.length} left unpopulated as on the source` : ''}`;
    });
    await step('triggers', async () => {
      if (!config.objects.triggers) return new Skipped('objects.triggers is off: the source triggers were reported, not created');
      const n = state.schema.byKind['trigger'] ?? 0;
      return `${n} triggers created after the consistency point; they never fired for replicated changes and fire from now on`;
    });
    await step('verify', async () => {
      if (c.verify === 'none') return new Skipped('cutover.verify none');
      // changed: after a full verification that found nothing (verify phase, re-checking while changes flowed), only the
      // tables the apply wrote since it started are compared again — at lag zero, so the comparison is exact.
      const last = state.dataVerification;
      const since = state.changedSince;
      const onlyChanged =
        c.verify === 'changed' && !!last?.finishedAt && last.inconsistent === 0 && !!since && !since.many && patched('cutover-verify-changed-tables');
      const { verification: v } = await runDataVerification({
        config,
        acts,
        heartbeatTimeout,
        onStart: (x) => (state.dataVerification = x),
        onProgress: ctx.show,
        ...(onlyChanged ? { tables: since!.tables } : {}),
        // Drained to the fence: nothing is left to wait for, a difference is one.
        recheck: false,
      });
      state.dataVerificationDeferred = null;
      const iv = state.incrementalVerification;
      const scope = onlyChanged
        ? `changed: the ${since!.tables.length} tables written since the full verification of ${since!.at} compared again (the others were consistent then and have not changed)` +
          (iv ? ` (incremental verification: ${iv.checked.toLocaleString('en-US')} changed rows checked, ${iv.mismatched} mismatched)` : '') +
          '; '
        : c.verify === 'changed'
          ? `changed: ${
              !last?.finishedAt
                ? 'no full verification ran since the copy'
                : last.inconsistent
                  ? 'the last full verification found differences'
                  : 'more tables changed than are tracked'
            }, so every row was compared; `
          : '';
      c.verification = `${scope}${v.compared} tables, ${v.rowsSource.toLocaleString('en-US')} rows compared, ${v.inconsistent ? `${v.inconsistent} inconsistent` : 'all consistent'}`;
      if (v.inconsistent) throw new Error(`the final data verification found ${v.inconsistent} inconsistent tables (see the data verification in status)`);
      return c.verification;
    });
    await step('fence-check', async () => {
      if (!fenced) return new Skipped('no fence to check');
      const at = (await acts.sourceWalPosition.executeWithOptions({ startToCloseTimeout: '5m', summary: `WAL position of ${src}` }, [{ config }])).lsn;
      const r = await drain(at, `check that nothing was written on ${src} after the fence`);
      recordApplyRound(capture, r, now());
      return `no change of a migrated table after the fence (read up to LSN ${at})`;
    });
  } catch (err) {
    if (isCancellation(err)) throw err; // an abort: the workflow lifts the fence with the release of the source
    c.failure = rootCause(err).message;
    if (cutoverStep(c, 'fence').status === 'done') {
      await CancellationScope.nonCancellable(() =>
        acts.liftFence.executeWithOptions({ startToCloseTimeout: '10m', summary: `lift the write fence on ${src}` }, [{ config }]),
      );
      cutoverStep(c, 'fence').detail += ' — lifted after the failure';
    }
    ctx.show();
    // Nothing is lost: the apply resumes from the destination's applied position.
    return { kind: 'back-to', phase: 'incremental' };
  }

  await step('ready', async () => {
    c.readyAt = now();
    c.downtimeSeconds = seconds(c.fencedAt ?? c.readyAt, c.readyAt);
    return `write downtime ${c.downtimeSeconds.toFixed(1)} s (${fenced ? 'fence' : 'position noted'} → destination ready): switch the application to the destination`;
  });
  await step('release-source', async () => {
    const r = await acts.releaseSource.executeWithOptions(
      { startToCloseTimeout: '30m', summary: `drop slot ${capture.slot}, publication and control schema on ${src}` },
      [{ config, keepFence: true }],
    );
    c.cleaned = [
      ...(r.droppedSlot ? [`slot ${capture.slot}`] : []),
      ...(r.droppedPublication ? ['publication'] : []),
      ...(r.droppedSchema ? ['control schema pgshift (heartbeat)'] : []),
    ];
    return `${c.cleaned.join(', ') || 'nothing left'}${r.fence === 'kept' ? `; the source stays read-only (ALTER DATABASE … RESET default_transaction_read_only lifts it)` : ''}`;
  });
  await step('fence-destination', async () => {
    await acts.fenceDestination.executeWithOptions({ startToCloseTimeout: '30m', summary: `fence ${dst}: no earlier activity writes again` }, [{ config }]);
    return 'the run token is retired: no activity of this migration can write to the destination again';
  });
  c.finishedAt = now();
  return DONE;
}
