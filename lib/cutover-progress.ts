// What the workflow knows about a cutover: the request, each step as it
// happens, the write downtime it measured and what it cleaned. The one place
// that decides whether a cutover may start (refusal), shared by the update's
// validator, the signal and the CLI's answer.
// Pure: imported by workflow code and by the CLI.
import type { Config } from './config';
import type { MigrationState } from './migration-state';

export type CutoverFence = Config['cutover']['fence'];
export type CutoverVerify = Config['cutover']['verify'];

/** What an operator may choose per cutover (the config gives the defaults). */
export interface CutoverRequest {
  fence?: CutoverFence;
  verify?: CutoverVerify;
}

export type CutoverAnswer = { accepted: true; fence: CutoverFence; verify: CutoverVerify } | { accepted: false; reason: string };

/** The steps in order; those before `ready` can be undone (the fence is lifted and the apply goes on). */
export const CUTOVER_STEPS = [
  'fence',
  'stop-apply',
  'drain',
  'sequences',
  'materialized-views',
  'triggers',
  'verify',
  'fence-check',
  'ready',
  'release-source',
  'fence-destination',
] as const;
export type CutoverStepName = (typeof CUTOVER_STEPS)[number];

export interface CutoverStep {
  name: CutoverStepName;
  status: 'pending' | 'running' | 'done' | 'skipped' | 'failed';
  startedAt: string | null;
  endedAt: string | null;
  detail: string | null;
}

export interface CutoverProgress {
  requestedAt: string;
  /** Attempt number (a failed attempt before `ready` lifts the fence and the apply goes on). */
  attempt: number;
  fence: CutoverFence;
  verify: CutoverVerify;
  steps: CutoverStep[];
  /** Source WAL position once the fence held (or, without a fence, when the cutover noted it): the drain's target. */
  fenceLsn: string | null;
  fencedAt: string | null;
  /** When the destination was ready for the application (drained, sequences set, verified). */
  readyAt: string | null;
  /** Write downtime: fence → destination ready. */
  downtimeSeconds: number | null;
  finalLagSeconds: number | null;
  verification: string | null;
  cleaned: string[];
  /** Set when the attempt failed (before `ready`: undone; the request is cleared). */
  failure: string | null;
  finishedAt: string | null;
}

export function newCutover(at: string, attempt: number, fence: CutoverFence, verify: CutoverVerify): CutoverProgress {
  return {
    requestedAt: at,
    attempt,
    fence,
    verify,
    steps: CUTOVER_STEPS.map((name) => ({ name, status: 'pending', startedAt: null, endedAt: null, detail: null })),
    fenceLsn: null,
    fencedAt: null,
    readyAt: null,
    downtimeSeconds: null,
    finalLagSeconds: null,
    verification: null,
    cleaned: [],
    failure: null,
    finishedAt: null,
  };
}

export const cutoverStep = (c: CutoverProgress, name: CutoverStepName): CutoverStep => c.steps.find((s) => s.name === name)!;

/** Rough seconds the fenced part of a cutover needs: the drain (lag), sequences, and a verification of `verifyRows`. */
export function estimateDowntimeSeconds(lagSeconds: number, sequences: number, verifyRows: number): number {
  // Measured on a 2-core machine: a drain runs faster than real time, setval takes ~1 ms, hashing reads ~300k rows/s on each side.
  return lagSeconds + 1 + sequences * 0.002 + verifyRows / 300_000;
}

/** Rows the final verification would compare (all copied rows for full; `changed` is the full one until a full verification ran). */
export function verificationRows(state: MigrationState, verify: CutoverVerify): number {
  if (verify === 'none') return 0;
  return state.fullLoad?.totals.rows ?? 0;
}

/**
 * Why a cutover cannot start now (null: it can). The checks a DBA would make
 * before a switch-over: the data is there and consistent, the apply is close
 * behind, nothing is paused or already under way.
 */
export function cutoverRefusal(state: MigrationState, config: Config, req: Required<CutoverRequest>): string | null {
  if (!config.mode.incremental) return 'this migration has no change capture (mode.incremental is false): it ends by itself after the full load';
  if (state.abortRequested || state.phase === 'aborted') return 'the migration is aborting';
  if (state.phase === 'done' || state.phase === 'failed') return `the migration has ended (${state.phase})`;
  if (state.cutover && !state.cutover.failure) return `a cutover is already under way (requested ${state.cutover.requestedAt})`;
  if (state.phase === 'full-load') return 'still in full load: cutover is possible once the copy is done and the apply has passed the consistency point';
  const c = state.capture;
  if (!c || !c.consistentAt) {
    return `before the consistency point (apply at ${c?.appliedLsn ?? 'not started'}, consistency point ${c?.consistencyLsn ?? 'not reached yet'}): still in ${state.phase}`;
  }
  if (state.phase !== 'incremental') return `still in ${state.phase}: cutover is possible once the incremental phase runs`;
  if (state.paused) return 'the migration is paused: resume it first (the apply must run to drain)';
  if (c.lagSeconds === null) return 'the lag is not measured yet: try again in a few seconds';
  if (c.lagSeconds > config.cutover.maxLagSeconds) {
    return `lag ${c.lagSeconds.toFixed(1)} s is above cutover.maxLagSeconds (${config.cutover.maxLagSeconds} s): wait until the apply catches up`;
  }
  const limit = config.cutover.maxDowntimeSeconds;
  if (limit !== null) {
    const est = estimateDowntimeSeconds(c.lagSeconds, state.sequences ?? 0, verificationRows(state, req.verify));
    if (est > limit) {
      return `the estimated write downtime ${est.toFixed(1)} s (drain of ${c.lagSeconds.toFixed(1)} s lag, sequences, ${req.verify} verification) exceeds cutover.maxDowntimeSeconds (${limit} s)`;
    }
  }
  return null;
}

const fmtSeconds = (s: number | null) => (s === null ? '–' : `${s.toFixed(1)} s`);

/** Markdown for status and the UI's current details. */
export function renderCutover(c: CutoverProgress): string[] {
  const head = c.finishedAt
    ? `### Cutover: done · write downtime ${fmtSeconds(c.downtimeSeconds)}`
    : c.failure
      ? `### Cutover attempt ${c.attempt}: failed — ${c.failure}`
      : `### Cutover: in progress (fence ${c.fence}, verify ${c.verify})`;
  const lines = [head, '| step | status | detail |', '|---|---|---|'];
  const icon = { pending: '⬜', running: '▶️', done: '✅', skipped: '➖', failed: '❌' } as const;
  for (const s of c.steps) lines.push(`| ${s.name} | ${icon[s.status]} ${s.status} | ${s.detail ?? ''} |`);
  if (c.readyAt) lines.push(`Destination ready at ${c.readyAt}; final lag ${fmtSeconds(c.finalLagSeconds)}${c.verification ? `; ${c.verification}` : ''}.`);
  if (c.cleaned.length) lines.push(`Cleaned: ${c.cleaned.join(', ')}.`);
  return lines;
}
