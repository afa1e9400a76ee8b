// Status between the workflow's own updates. The workflow counts a chunk copy or an apply round
// when it returns; the running ones report where they are by heartbeat (pending activities), and
// two samples a few seconds apart give the rates of right now (`pgshift status --watch`).
// Pure: the client decodes the heartbeats, this folds them in.
import type { ApplyPosition } from './capture-progress';
import type { ChunkBeat, MigrationState } from './migration-state';

/** One running activity's last heartbeat details, decoded (undefined: a keep-alive beat without details). */
export interface PendingBeat {
  activity: string;
  details: unknown;
}

type ApplyBeatFields = Pick<ApplyPosition, 'appliedLsn' | 'lagSeconds' | 'lagBytes' | 'changes' | 'transactions'>;

/**
 * Add what running activities reported to the state (in place): a copy's rows and bytes so far
 * to its table and the totals, a running apply round's position, lag and changes to the capture.
 */
export function applyPendingBeats(state: MigrationState, beats: PendingBeat[]): void {
  const f = state.fullLoad && !state.fullLoad.finishedAt ? state.fullLoad : null;
  const c = state.capture && !state.finishedAt ? state.capture : null;
  for (const { activity, details } of beats) {
    if (activity === 'applyChanges' && c) {
      const beat = details as Partial<ApplyBeatFields> | undefined;
      if (typeof beat?.appliedLsn !== 'string' || typeof beat.changes !== 'number') continue;
      c.appliedLsn = beat.appliedLsn;
      c.lagSeconds = beat.lagSeconds ?? c.lagSeconds;
      c.lagBytes = beat.lagBytes ?? c.lagBytes;
      c.changes += beat.changes;
      c.transactions += beat.transactions ?? 0;
    } else if (activity === 'copyChunk' && f) {
      const beat = details as Partial<ChunkBeat> | undefined;
      if (typeof beat?.rows !== 'number' || typeof beat.bytes !== 'number') continue;
      f.totals.rows += beat.rows;
      f.totals.bytes += beat.bytes;
      const t = beat.table !== undefined ? f.tables[beat.table] : undefined;
      if (!t) continue;
      t.rows += beat.rows;
      t.bytes += beat.bytes;
    }
  }
}

/** Rates between two status samples (what moved in between, per second). */
export interface LiveRates {
  /** By table key, for the tables in both samples' view. */
  tables: Record<string, { rowsPerSecond: number; bytesPerSecond: number }>;
  /** Changes applied per second (null: no change capture in both samples). */
  changesPerSecond: number | null;
}

export function liveRates(prev: { at: number; state: MigrationState }, cur: { at: number; state: MigrationState }): LiveRates | null {
  const secs = (cur.at - prev.at) / 1000;
  if (!(secs > 0)) return null;
  const tables: LiveRates['tables'] = {};
  const before = prev.state.fullLoad?.tables ?? {};
  for (const [key, t] of Object.entries(cur.state.fullLoad?.tables ?? {})) {
    const b = before[key];
    // A retried chunk starts again from 0: a negative rate would mean nothing.
    if (b) tables[key] = { rowsPerSecond: Math.max(0, (t.rows - b.rows) / secs), bytesPerSecond: Math.max(0, (t.bytes - b.bytes) / secs) };
  }
  const c0 = prev.state.capture;
  const c1 = cur.state.capture;
  return { tables, changesPerSecond: c0 && c1 ? Math.max(0, (c1.changes - c0.changes) / secs) : null };
}
