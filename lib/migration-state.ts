// The one explicit, serialisable state of a MigrationWorkflow. It survives
// continue-as-new (it is the next run's input); signals change it, never I/O.
// The status query returns it, and the UI's current details render it.
// Pure: imported by workflow code and by the CLI.
import type { Config } from './config';
import type { PrecheckItem } from './precheck-catalog';
import { type CaptureProgress, renderCapture } from './capture-progress';
import { type CutoverProgress, renderCutover } from './cutover-progress';
import type { FullLoadProgress, FullLoadTotals, TableProgress } from './full-load-progress';
import type { LiveRates } from './live-status';
import type { DataVerification } from './verification-progress';
import { type IncrementalVerification, renderIncrementalVerification } from './incremental-verification';

export type { FullLoadProgress, FullLoadTotals, TableProgress } from './full-load-progress';
export type { DataVerification, TableDataVerification } from './verification-progress';

export type SchemaStage = 'before-data' | 'keys' | 'post-data';

/** Phases in execution order; which ones run depends on config.mode. */
export const PHASES = [
  'precheck',
  'prepare',
  'schema',
  'full-load',
  'keys',
  'catch-up',
  'post-data',
  'sequences',
  'analyze',
  'verify',
  'incremental',
  'cutover',
  'done',
] as const;
export type Phase = (typeof PHASES)[number] | 'aborted' | 'failed';

export function phaseEnabled(phase: Phase, mode: Config['mode'], verification: Config['verification']): boolean {
  switch (phase) {
    case 'schema':
    case 'keys':
    case 'post-data':
      return mode.schema;
    case 'full-load':
    case 'sequences':
    case 'analyze':
      return mode.full;
    case 'verify':
      return (mode.schema && verification.schema) || (mode.full && verification.full);
    case 'catch-up':
    case 'incremental':
    case 'cutover':
      return mode.incremental;
    default:
      return true;
  }
}

export interface SchemaStageProgress {
  total: number;
  applied: number;
  /** Statements applied before this stage ran: by the full load (a table's keys and indexes) or an earlier attempt (retry, crash). */
  skipped: number;
  /** Objects that already existed on the destination (existingTargetTables: ignore). */
  existing: number;
}

export interface SchemaDifference {
  kind: string;
  /** Destination object in display syntax. */
  object: string;
  difference: string;
}

export interface SchemaVerification {
  /** Objects compared, by kind. */
  compared: Record<string, number>;
  differences: SchemaDifference[];
}

/** Heartbeat details of a running chunk copy (table key as in pgshift.chunks and FullLoadProgress.tables). */
export interface ChunkBeat {
  table: string;
  chunk: number;
  rows: number;
  bytes: number;
}

export interface Throttle {
  fullRowsPerSecond: number | null;
  fullMbPerSecond: number | null;
  incrementalRowsPerSecond: number | null;
}

export interface MigrationError {
  at: string;
  phase: Phase;
  /** The innermost cause (the object, statement and SQLSTATE an activity reported), not the SDK's wrapper text. */
  message: string;
  /** Failure type of the innermost cause (e.g. InvalidInput, Fenced, RetryWindowExceeded). */
  type?: string | null;
  /** The activity that failed, when the failure came from one. */
  activity?: string | null;
}

export interface MigrationState {
  /** Fencing token of this run, registered on the destination: a write of any other run fails. */
  runToken: string;
  phase: Phase;
  startedAt: string;
  finishedAt: string | null;
  precheck: PrecheckItem[] | null;
  schema: {
    statements: number | null;
    byKind: Record<string, number>;
    stages: Partial<Record<SchemaStage, SchemaStageProgress>>;
    warnings: string[];
    verification: SchemaVerification | null;
  };
  fullLoad: FullLoadProgress | null;
  sequences: number | null;
  dataVerification: DataVerification | null;
  /** Change capture (mode.incremental): absent before the source is prepared. */
  capture?: CaptureProgress | null;
  /** The cutover (requested, under way, failed or done); absent before one is requested. */
  cutover?: CutoverProgress | null;
  /** The last cutover request that was refused (a signal cannot answer; status does). */
  cutoverRefused?: { at: string; reason: string } | null;
  /**
   * The tables the apply wrote since the migration's full data verification started (verify phase, with
   * change capture): what a cutover with `verify: changed` compares again. many: more than the apply counts.
   */
  changedSince?: { at: string; tables: { key: string; display: string }[]; many: boolean } | null;
  /** Incremental verification (verification.incremental): absent before the incremental phase first runs. */
  incrementalVerification?: IncrementalVerification | null;
  /** Why the full data verification did not run in the verify phase (null: it ran or is off). */
  dataVerificationDeferred?: string | null;
  /** What abort dropped on the destination (config.abort.dropCreatedObjects) and what it had to keep. */
  abortCleanup?: { dropped: string[]; kept: string[] };
  throttle: Throttle;
  paused: boolean;
  abortRequested: boolean;
  /** Most recent errors (bounded, so history stays small). */
  errors: MigrationError[];
  /** Continue-as-new generations so far. */
  generation: number;
}

export interface MigrationInput {
  config: Config;
  /** Present when the workflow continued as new. */
  state?: MigrationState;
  /**
   * Continue as new after this many chunk copies in one run, in addition to
   * Temporal's own suggestion (history size). For tests of the hand-over.
   */
  continueAsNewAfterChunks?: number;
  /** Chunks per page of the full-load plan (whole tables are added until a page holds this many). For tests of the paging. */
  fullLoadPageChunks?: number;
  /**
   * Continue as new once a run's history has this many events, as Temporal
   * suggests it for long histories, in whatever phase. For tests of the hand-over.
   */
  continueAsNewAtHistoryLength?: number;
}

export function initialState(config: Config, runToken: string, now: string): MigrationState {
  return {
    runToken,
    phase: 'precheck',
    startedAt: now,
    finishedAt: null,
    precheck: null,
    schema: { statements: null, byKind: {}, stages: {}, warnings: [], verification: null },
    fullLoad: null,
    sequences: null,
    dataVerification: null,
    throttle: { ...config.throttle },
    paused: false,
    abortRequested: false,
    errors: [],
    generation: 0,
  };
}

export const MAX_ERRORS = 20;
/** Tables kept in changedSince; past it a cutover's `verify: changed` compares every table. */
export const CHANGED_SINCE_LIMIT = 200;

/** Add an apply round's changed tables to changedSince (when it is kept). */
export function recordChangedTables(s: MigrationState, tables: { key: string; display: string }[] | null | undefined): void {
  const c = s.changedSince;
  if (!c || c.many || tables === undefined) return;
  if (tables === null) {
    c.many = true;
    c.tables = [];
    return;
  }
  for (const t of tables) if (!c.tables.some((x) => x.key === t.key)) c.tables.push(t);
  if (c.tables.length > CHANGED_SINCE_LIMIT) {
    c.many = true;
    c.tables = [];
  }
}

export function recordError(state: MigrationState, at: string, cause: Pick<MigrationError, 'message' | 'type' | 'activity'>): void {
  state.errors.push({ at, phase: state.phase, message: cause.message, type: cause.type ?? null, activity: cause.activity ?? null });
  if (state.errors.length > MAX_ERRORS) state.errors.splice(0, state.errors.length - MAX_ERRORS);
}

/** The precheck items that stop a migration: failures, and warnings nobody acknowledged. */
export function blockingItems(items: PrecheckItem[]): PrecheckItem[] {
  return items.filter((i) => i.verdict === 'fail' || (i.verdict === 'warn' && !i.acknowledged));
}

const STAGES: SchemaStage[] = ['before-data', 'keys', 'post-data'];

/** Markdown for the Temporal UI's current details and `pgshift status`. */
const MB = 1024 * 1024;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export function fullLoadTotals(f: FullLoadProgress): FullLoadTotals {
  return f.totals;
}

/** Below 100 % until the last chunk landed: the estimates (reltuples, table size) are estimates. */
const BELOW_DONE = 0.999;

/**
 * How far a table is: its rows against the planner's estimate (its bytes on disk when it has
 * none), so a table of one chunk moves while it copies rather than jumping from 0 to 100 %.
 */
export function tableFraction(t: TableProgress): number {
  if (t.chunks > 0 && t.chunksDone >= t.chunks) return 1;
  const byChunks = t.chunks ? t.chunksDone / t.chunks : 0;
  const byData = t.estimatedRows > 0 ? t.rows / t.estimatedRows : t.estimatedBytes > 0 ? t.bytes / t.estimatedBytes : 0;
  return Math.min(BELOW_DONE, Math.max(byChunks, byData));
}

/** The whole load: bytes copied against the tables' size (the totals carry no row estimate). */
export function fullLoadFraction(f: FullLoadProgress): number {
  const tot = f.totals;
  if (f.finishedAt || (tot.chunks > 0 && tot.chunksDone >= tot.chunks)) return 1;
  const byChunks = tot.chunks ? tot.chunksDone / tot.chunks : 0;
  const byData = tot.estimatedBytes > 0 ? tot.bytes / tot.estimatedBytes : 0;
  return Math.min(BELOW_DONE, Math.max(byChunks, byData));
}

const perSecond = (rows: number, bytes: number) => `${fmt(rows)} rows/s, ${(bytes / MB).toFixed(1)} MB/s`;

/**
 * Totals with rate and ETA (from the bytes copied so far), then the tables of the status view.
 * `live`: rates measured between two samples (`pgshift status --watch`), shown by table.
 */
export function renderFullLoad(f: FullLoadProgress, now: number, live?: LiveRates | null): string[] {
  const tot = f.totals;
  const secs = Math.max(1, ((f.finishedAt ? Date.parse(f.finishedAt) : now) - Date.parse(f.startedAt)) / 1000);
  const rate = tot.bytes / secs;
  const pct = 100 * fullLoadFraction(f);
  const eta = !f.finishedAt && rate > 0 ? Math.max(0, (tot.estimatedBytes - tot.bytes) / rate) : 0;
  const shown = Object.entries(f.tables).sort(([, a], [, b]) => b.estimatedBytes - a.estimatedBytes);
  const rates = live && !f.finishedAt ? live.tables : null;
  const lines = [
    `### Full load: ${pct.toFixed(1)} % (${tot.chunksDone}/${tot.chunks} chunks, ${fmt(tot.rows)} rows, ${(tot.bytes / MB).toFixed(1)} MB; ${tot.tablesDone}/${tot.tables} tables)` +
      ` · ${fmt(tot.rows / secs)} rows/s · ${(rate / MB).toFixed(1)} MB/s${f.finishedAt ? ' · finished' : ` · ETA ${Math.round(eta)} s · ${f.activeCopies} copies running`}`,
    `| table | progress | rows | MB |${rates ? ' now |' : ''}`,
    `|---|---|---:|---:|${rates ? '---:|' : ''}`,
  ];
  for (const [key, t] of shown) {
    const p = tableFraction(t);
    const bar = '█'.repeat(Math.floor(p * 10)) + '░'.repeat(10 - Math.floor(p * 10));
    const done = p === 1;
    const rows = done || !t.estimatedRows ? fmt(t.rows) : `${fmt(t.rows)} of ~${fmt(t.estimatedRows)}`;
    const now = rates ? (rates[key] && !done ? ` ${perSecond(rates[key].rowsPerSecond, rates[key].bytesPerSecond)} |` : ' |') : '';
    lines.push(`| ${t.display} | ${bar} ${Math.floor(p * 100)} % (${t.chunksDone}/${t.chunks} chunks) | ${rows} | ${(t.bytes / MB).toFixed(1)} |${now}`);
  }
  if (tot.tables > shown.length)
    lines.push(`| … ${fmt(tot.tables - shown.length)} more tables (the largest and the ones copying now are shown) | | | |${rates ? ' |' : ''}`);
  return lines;
}

/** Counters, then the tables of the view: inconsistent ones first. */
export function renderDataVerification(v: DataVerification): string[] {
  const t = Object.values(v.tables);
  const lines = [
    `### Data verification: ${v.compared} tables${v.finishedAt ? '' : ` so far (of ${v.total})`}, ${v.inconsistent ? `${v.inconsistent} inconsistent` : 'all consistent'}` +
      ` (${fmt(v.rowsSource)} rows compared)`,
  ];
  for (const x of [...t.filter((x) => !x.consistent), ...t.filter((x) => x.consistent)]) lines.push(`- ${x.consistent ? '✅' : '❌'} ${x.summary}`);
  const more = v.compared - t.length;
  if (more > 0) lines.push(`- … ${fmt(more)} more tables compared${v.inconsistent > t.filter((x) => !x.consistent).length ? '' : ', consistent'}`);
  return lines;
}

/** `live`: rates between two samples (`pgshift status --watch`); the workflow's own details have none. */
export function renderStatusMarkdown(
  name: string,
  config: Pick<Config, 'mode' | 'verification'>,
  s: MigrationState,
  now = Date.now(),
  live: LiveRates | null = null,
): string {
  const lines = [`## pgshift ${name}: ${s.phase}${s.paused ? ' (paused)' : ''}${s.abortRequested && s.phase !== 'aborted' ? ' (aborting)' : ''}`];
  const enabled = PHASES.filter((p) => phaseEnabled(p, config.mode, config.verification));
  const at = PHASES.indexOf(s.phase as (typeof PHASES)[number]);
  lines.push(enabled.map((p) => `${PHASES.indexOf(p) < at || s.phase === 'done' ? '✅' : p === s.phase ? '▶️' : '⬜'} ${p}`).join(' · '));
  const last = s.errors[s.errors.length - 1];
  if (s.phase === 'failed' && last) lines.push('', `**Failed in ${last.phase}:** ${last.message}`);
  if (s.schema.statements !== null) {
    lines.push('', `### Schema: ${s.schema.statements} statements`);
    lines.push('| stage | applied | applied earlier (full load, retry) | already existing | total |', '|---|---:|---:|---:|---:|');
    for (const st of STAGES) {
      const p = s.schema.stages[st];
      if (p) lines.push(`| ${st} | ${p.applied} | ${p.skipped} | ${p.existing} | ${p.total} |`);
    }
  }
  if (s.fullLoad) lines.push('', ...renderFullLoad(s.fullLoad, now, live));
  if (s.capture) lines.push('', ...renderCapture(s.capture, s.paused, live?.changesPerSecond));
  if (s.cutover) lines.push('', ...renderCutover(s.cutover));
  else if (s.cutoverRefused) lines.push('', `### Cutover refused at ${s.cutoverRefused.at}: ${s.cutoverRefused.reason}`);
  const v = s.schema.verification;
  if (v) {
    const n = Object.values(v.compared).reduce((a, b) => a + b, 0);
    lines.push('', `### Schema verification: ${n} objects compared, ${v.differences.length ? `${v.differences.length} differences` : 'no difference'}`);
    for (const d of v.differences.slice(0, 20)) lines.push(`- ${d.kind} ${d.object}: ${d.difference}`);
  }
  if (s.incrementalVerification) lines.push('', ...renderIncrementalVerification(s.incrementalVerification));
  if (s.dataVerification) lines.push('', ...renderDataVerification(s.dataVerification));
  if (s.dataVerificationDeferred) lines.push('', `### Data verification: deferred — ${s.dataVerificationDeferred}`);
  if (s.errors.length) {
    lines.push('', '### Recent errors');
    for (const e of s.errors.slice(-5)) lines.push(`- ${e.at} [${e.phase}${e.activity ? `, ${e.activity}` : ''}] ${e.message}`);
  }
  return lines.join('\n');
}
