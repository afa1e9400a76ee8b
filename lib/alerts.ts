// Alerts: what is worth waking someone for, as one payload shape (logged by
// the workflow, POSTed to alerts.webhookUrl by the sendAlert activity), and
// the rules that keep a condition from alerting on every apply round:
//   failure                the migration failed (after its retry windows)
//   lag                    apply lag crossed above alerts.lagSeconds; resolved
//                          once it is back below LAG_CLEAR_RATIO of it
//   wal-retention          the slot's WAL nears max_slot_wal_keep_size (less
//                          than WAL_RAISE_RATIO of it left before the slot is
//                          lost, or wal_status unreserved/lost); resolved above
//                          WAL_CLEAR_RATIO. PG13+ only (PG11/12 have neither)
//   verification-mismatch  a data verification found inconsistent tables, or
//                          the incremental verification a row that differs
//   ddl                    a captured DDL was not replayed: reported (warning)
//                          or the apply stopped at it (critical, until skipped)
// Pure: imported by workflow code.
import type { SlotWal } from './capture-progress';
import type { DataVerification } from './verification-progress';
import type { IncrementalMismatchView } from './incremental-verification';

export type AlertKind = 'failure' | 'lag' | 'wal-retention' | 'verification-mismatch' | 'ddl';
export type AlertSeverity = 'critical' | 'warning' | 'resolved';

/** The JSON body POSTed to alerts.webhookUrl (documented in README "Monitoring"). */
export interface Alert {
  migration: string;
  kind: AlertKind;
  severity: AlertSeverity;
  message: string;
  /** ISO time the workflow raised it. */
  at: string;
  details: Record<string, unknown>;
}

/** Conditions raised and not yet resolved, carried with the capture progress (and over continue-as-new). */
export interface AlertingState {
  lag: boolean;
  walRetention: boolean;
}

export const LAG_CLEAR_RATIO = 0.8;
export const WAL_RAISE_RATIO = 0.2;
export const WAL_CLEAR_RATIO = 0.3;

export const newAlertingState = (): AlertingState => ({ lag: false, walRetention: false });

/** Connection strings and password assignments blanked, should any reach a message (the config never holds a password). */
export function redact(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]+):[^@\s]*@/gi, '$1:***@')
    .replace(/\b(password|passwd|pwd)(\s*[=:]\s*)('[^']*'|"[^"]*"|\S+)/gi, '$1$2***');
}

const mb = (n: number) => `${(n / (1 << 20)).toFixed(1)} MB`;

/** Whether the slot's WAL is near the limit (null: cannot tell, e.g. no limit or PG11/12). */
function walNearLimit(w: SlotWal, ratio: number): boolean | null {
  if (w.walStatus === 'unreserved' || w.walStatus === 'lost') return true;
  if (w.safeBytes === null || w.maxKeepBytes === null || w.maxKeepBytes <= 0) return null;
  return w.safeBytes < w.maxKeepBytes * ratio;
}

/**
 * The alerts one apply round raises or resolves, given the conditions raised
 * so far (updated in place): each condition alerts once when it starts and
 * once when it ends, never on every round.
 */
export function roundAlerts(
  migration: string,
  s: AlertingState,
  round: { lagSeconds: number | null; lagBytes: number | null; wal?: SlotWal | null },
  lagThresholdSeconds: number,
  at: string,
): Alert[] {
  const out: Alert[] = [];
  const lag = round.lagSeconds;
  if (lag !== null) {
    const details = { lagSeconds: lag, lagBytes: round.lagBytes, thresholdSeconds: lagThresholdSeconds };
    if (!s.lag && lag > lagThresholdSeconds) {
      s.lag = true;
      out.push({
        migration,
        kind: 'lag',
        severity: 'warning',
        at,
        details,
        message: `apply lag ${lag.toFixed(1)} s is above alerts.lagSeconds (${lagThresholdSeconds} s)${round.lagBytes !== null ? `, ${mb(round.lagBytes)} of WAL behind` : ''}`,
      });
    } else if (s.lag && lag < lagThresholdSeconds * LAG_CLEAR_RATIO) {
      s.lag = false;
      out.push({
        migration,
        kind: 'lag',
        severity: 'resolved',
        at,
        details,
        message: `apply lag is back to ${lag.toFixed(1)} s (alerts.lagSeconds ${lagThresholdSeconds} s)`,
      });
    }
  }
  const w = round.wal;
  if (w) {
    const details = { ...w };
    if (!s.walRetention && walNearLimit(w, WAL_RAISE_RATIO) === true) {
      s.walRetention = true;
      out.push({
        migration,
        kind: 'wal-retention',
        severity: w.walStatus === 'lost' ? 'critical' : 'warning',
        at,
        details,
        message:
          w.walStatus === 'lost'
            ? 'the replication slot has lost WAL it needed (max_slot_wal_keep_size exceeded): the migration cannot continue from it'
            : `the replication slot retains ${w.retainedBytes !== null ? mb(w.retainedBytes) : 'WAL'}; ` +
              `${w.safeBytes !== null ? mb(w.safeBytes) : 'little'} left before max_slot_wal_keep_size${w.maxKeepBytes !== null ? ` (${mb(w.maxKeepBytes)})` : ''} invalidates it (wal_status ${w.walStatus ?? 'unknown'})`,
      });
    } else if (s.walRetention && walNearLimit(w, WAL_CLEAR_RATIO) === false) {
      s.walRetention = false;
      out.push({
        migration,
        kind: 'wal-retention',
        severity: 'resolved',
        at,
        details,
        message: `the replication slot's WAL is back within max_slot_wal_keep_size (${w.safeBytes !== null ? mb(w.safeBytes) : '?'} left)`,
      });
    }
  }
  return out;
}

export function failureAlert(migration: string, phase: string, cause: { message: string; type: string | null; activity: string | null }, at: string): Alert {
  return {
    migration,
    kind: 'failure',
    severity: 'critical',
    at,
    message: redact(`migration failed in ${phase}: ${cause.message}`),
    details: { phase, type: cause.type, activity: cause.activity },
  };
}

/** A DDL the apply did not replay: stopped at (critical) or only reported (warning). */
export function ddlAlert(
  migration: string,
  ev: { entry: number; lsn: string; tag: string; statement: string; what: string; reason: string | null },
  at: string,
): Alert {
  const stopped = ev.what === 'blocked';
  return {
    migration,
    kind: 'ddl',
    severity: stopped ? 'critical' : 'warning',
    at,
    message: redact(
      stopped
        ? `the apply stopped at DDL entry ${ev.entry} (${ev.tag} at LSN ${ev.lsn}): ${ev.reason}; statement: ${ev.statement}; once the destination is fixed by hand: pgshift ddl skip ${migration} ${ev.entry}`
        : `DDL entry ${ev.entry} (${ev.tag} at LSN ${ev.lsn}) not replayed: ${ev.reason}; statement: ${ev.statement}`,
    ),
    details: { entry: ev.entry, lsn: ev.lsn, tag: ev.tag, statement: ev.statement, reason: ev.reason, stopped },
  };
}

/** Rows the incremental verification found different (table and key of each, up to 20). */
export function incrementalMismatchAlert(migration: string, mismatches: IncrementalMismatchView[], at: string): Alert {
  const first = mismatches[0];
  return {
    migration,
    kind: 'verification-mismatch',
    severity: 'critical',
    at,
    message:
      `incremental verification found ${mismatches.length} row${mismatches.length === 1 ? '' : 's'} that differ: ` +
      mismatches
        .slice(0, 3)
        .map((m) => `${m.table} key (${m.key.join(', ')}) ${m.problem}`)
        .join('; ') +
      (mismatches.length > 3 ? '; …' : ''),
    details: { incremental: true, table: first?.table, key: first?.key, rows: mismatches.slice(0, 20) },
  };
}

export function mismatchAlert(migration: string, v: DataVerification, at: string): Alert {
  const bad = Object.values(v.tables).filter((t) => !t.consistent);
  return {
    migration,
    kind: 'verification-mismatch',
    severity: 'critical',
    at,
    message: `data verification found ${v.inconsistent} inconsistent of ${v.compared} tables${
      bad.length
        ? `: ${bad
            .map((t) => t.display)
            .slice(0, 5)
            .join(', ')}${bad.length > 5 ? ', …' : ''}`
        : ''
    }`,
    details: { compared: v.compared, inconsistent: v.inconsistent, tables: bad.slice(0, 20).map((t) => ({ table: t.display, summary: t.summary })) },
  };
}
