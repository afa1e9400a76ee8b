// What the workflow knows about change capture, kept small and bounded (it
// rides in every continue-as-new input): where the slot starts, the
// consistency point, where the apply stands and how far it lags. The apply's
// resume position itself lives on the destination (pgshift.capture), never here.
// Pure: imported by workflow code and by the CLI.
import type { AlertingState } from './alerts';
import { lagBucket } from './search-attributes';

export interface CaptureProgress {
  slot: string;
  /** The slot's consistent point: every change committed after it is streamed. */
  startLsn: string;
  /**
   * Source WAL position once the last chunk was copied. Until the apply has
   * passed it, replay may revisit older row states; past it the destination
   * holds each row's latest state, so secondary unique indexes, foreign keys
   * and triggers can be created.
   */
  consistencyLsn: string | null;
  /** When the apply passed the consistency point (null: not yet). */
  consistentAt: string | null;
  appliedLsn: string | null;
  receivedLsn: string | null;
  lagSeconds: number | null;
  lagBytes: number | null;
  /** Totals over all apply rounds. */
  transactions: number;
  changes: number;
  /** Batches that hit a constraint once collapsed and were applied change by change. */
  fallbacks: number;
  /** Rates of the last round. */
  changesPerSecond: number | null;
  transactionsPerSecond: number | null;
  /** Whether apply sessions run with session_replication_role = replica (no FK checks, no user triggers). */
  replicaRole: boolean | null;
  rounds: number;
  updatedAt: string | null;
  /** The slot's WAL as of the last round (absent before it was measured). */
  wal?: SlotWal | null;
  /** Alert conditions raised and not yet resolved (lib/alerts.ts). */
  alerting?: AlertingState;
  /** DDL replication (activities/capture/ddl-replay.ts): absent before the first DDL. */
  ddl?: DdlProgress;
}

/** One captured DDL entry the apply replayed, reported, skipped or stopped at. */
export interface DdlEvent {
  /** The entry's id in the source's pgshift.ddl_log (what `pgshift ddl skip ID ENTRY` names). */
  entry: number;
  /** Commit LSN of the source transaction it belongs to. */
  lsn: string;
  tag: string;
  statement: string;
  what: 'replayed' | 'reported' | 'skipped' | 'blocked';
  reason: string | null;
  /** The destination statements (replayed, or refused). */
  statements?: string[];
}

export interface DdlProgress {
  replayed: number;
  /** The newest events (bounded), reported and skipped ones included. */
  events: DdlEvent[];
  /** The entry the apply stopped at, waiting for `pgshift ddl skip` (null: none). */
  blocked: DdlEvent | null;
  /** Entries the operator skipped (signal ddlSkip), passed to every apply round. */
  skipped: number[];
}

export const newDdlProgress = (): DdlProgress => ({ replayed: 0, events: [], blocked: null, skipped: [] });

/** DDL events kept in the progress. */
export const DDL_EVENTS_KEPT = 30;

export function newCaptureProgress(slot: string, startLsn: string): CaptureProgress {
  return {
    slot,
    startLsn,
    consistencyLsn: null,
    consistentAt: null,
    appliedLsn: null,
    receivedLsn: null,
    lagSeconds: null,
    lagBytes: null,
    transactions: 0,
    changes: 0,
    fallbacks: 0,
    changesPerSecond: null,
    transactionsPerSecond: null,
    replicaRole: null,
    rounds: 0,
    updatedAt: null,
  };
}

/** A WAL position `X/Y` as a comparable number (both halves are 32-bit hex). */
export function lsnValue(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

export const lsnAtLeast = (a: string | null, b: string | null): boolean => a !== null && b !== null && lsnValue(a) >= lsnValue(b);

/** The replication slot's WAL as the apply measures it on the source. */
export interface SlotWal {
  /** WAL the slot holds back from removal (current position − restart_lsn). */
  retainedBytes: number | null;
  /** pg_replication_slots.safe_wal_size (PG13+): WAL that can still be written before the slot is at risk; null when unlimited or before PG13. */
  safeBytes: number | null;
  /** max_slot_wal_keep_size in bytes (PG13+); null when unlimited (-1) or before PG13. */
  maxKeepBytes: number | null;
  /** pg_replication_slots.wal_status (PG13+): reserved, extended, unreserved or lost. */
  walStatus: string | null;
}

/** Where a running apply stands: what its heartbeats and its result both carry. */
export interface ApplyPosition {
  /** Commit end LSN of the last source transaction applied (and committed on the destination). */
  appliedLsn: string;
  /** Newest source commit received (applied or not). */
  receivedLsn: string;
  /** Seconds behind the source clock (heartbeat table) and bytes of WAL the slot holds; null until measured. */
  lagSeconds: number | null;
  lagBytes: number | null;
  transactions: number;
  changes: number;
  fallbacks: number;
  /** Whether apply sessions run with session_replication_role = replica (no FK checks, no user triggers). */
  replicaRole: boolean;
  /** The slot's WAL on the source (absent in results of older workers). */
  wal?: SlotWal | null;
}

/** What one apply round returns to the workflow. */
export interface ApplyRound extends ApplyPosition {
  seconds: number;
  /** DDL the round met (absent in results of older workers): replayed count, events, the entry it stopped at. */
  ddl?: { replayed: number; events: DdlEvent[]; blocked: DdlEvent | null };
}

/** Fold one apply round into the progress; true when this round passed the consistency point. */
export function recordApplyRound(p: CaptureProgress, r: ApplyRound, now: string): boolean {
  p.appliedLsn = r.appliedLsn;
  p.receivedLsn = r.receivedLsn;
  p.lagSeconds = r.lagSeconds;
  p.lagBytes = r.lagBytes;
  p.transactions += r.transactions;
  p.changes += r.changes;
  p.fallbacks += r.fallbacks;
  p.replicaRole = r.replicaRole;
  if (r.wal !== undefined) p.wal = r.wal;
  p.changesPerSecond = r.seconds > 0 ? Math.round(r.changes / r.seconds) : null;
  p.transactionsPerSecond = r.seconds > 0 ? Math.round(r.transactions / r.seconds) : null;
  p.rounds++;
  p.updatedAt = now;
  if (r.ddl && (r.ddl.events.length || r.ddl.blocked || p.ddl)) {
    const d = (p.ddl ??= newDdlProgress());
    d.replayed += r.ddl.replayed;
    // A blocked entry is re-met by every round until it is skipped: keep it once.
    for (const ev of r.ddl.events) if (!(ev.what === 'blocked' && d.events.some((x) => x.what === 'blocked' && x.entry === ev.entry))) d.events.push(ev);
    d.events.splice(0, Math.max(0, d.events.length - DDL_EVENTS_KEPT));
    d.blocked = r.ddl.blocked;
  }
  if (!p.consistentAt && lsnAtLeast(p.appliedLsn, p.consistencyLsn)) {
    p.consistentAt = now;
    return true;
  }
  return false;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const bytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : n >= 1024 ? `${(n / 1024).toFixed(1)} kB` : `${n} B`);

/** Markdown lines for status and the UI's current details; `changesPerSecond`: measured now, between two status samples. */
export function renderCapture(p: CaptureProgress, paused: boolean, changesPerSecond?: number | null): string[] {
  const lag =
    p.lagSeconds === null
      ? 'lag unknown yet'
      : `lag ${p.lagSeconds.toFixed(1)} s (${lagBucket(p.lagSeconds)})${p.lagBytes !== null ? `, ${bytes(p.lagBytes)} of WAL behind` : ''}`;
  const consistency = p.consistentAt
    ? `consistent since LSN ${p.consistencyLsn} at ${p.consistentAt}`
    : p.consistencyLsn
      ? `catching up to the consistency point LSN ${p.consistencyLsn}`
      : 'waiting for the full load to finish';
  return [
    `### Change capture: ${consistency}${paused ? ' · paused (the slot keeps the WAL)' : ''}`,
    `- ${lag} · applied ${p.appliedLsn ?? p.startLsn} (slot ${p.slot} from ${p.startLsn})` +
      (p.wal?.retainedBytes != null ? ` · the slot retains ${bytes(p.wal.retainedBytes)} of WAL` : '') +
      (p.wal?.safeBytes != null ? ` (${bytes(p.wal.safeBytes)} left before max_slot_wal_keep_size)` : ''),
    `- ${fmt(p.transactions)} transactions, ${fmt(p.changes)} changes applied` +
      (changesPerSecond != null ? ` · now ${fmt(changesPerSecond)} changes/s` : '') +
      (p.changesPerSecond !== null ? ` · last round ${fmt(p.changesPerSecond)} changes/s, ${fmt(p.transactionsPerSecond ?? 0)} transactions/s` : '') +
      (p.fallbacks ? ` · ${fmt(p.fallbacks)} batches applied change by change after a constraint conflict` : '') +
      (p.replicaRole === false ? ' · ⚠ apply sessions cannot set session_replication_role = replica: FK checks and user triggers fire' : ''),
    ...renderDdl(p.ddl),
  ];
}

function renderDdl(d: DdlProgress | undefined): string[] {
  if (!d) return [];
  const lines = [`- DDL: ${fmt(d.replayed)} replayed`];
  if (d.blocked) {
    lines.push(
      `- ⚠ the apply stopped at DDL entry ${d.blocked.entry} (${d.blocked.tag} at LSN ${d.blocked.lsn}): ${d.blocked.reason} — statement: ${d.blocked.statement} — ` +
        `fix the destination by hand if needed, then: pgshift ddl skip <ID> ${d.blocked.entry}`,
    );
  }
  for (const ev of d.events.filter((e) => e.what === 'reported' || (e.what === 'replayed' && e.reason)).slice(-5)) {
    lines.push(
      `- ⚠ DDL entry ${ev.entry} (${ev.tag} at LSN ${ev.lsn}) ${ev.what === 'reported' ? 'not replayed' : 'replayed'}: ${ev.reason} — ${ev.statement}`,
    );
  }
  return lines;
}
