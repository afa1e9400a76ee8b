// The workflow's side of monitoring: raising alerts (lib/alerts.ts) and
// telling the worker's metrics which phase a migration is in.
//
// An alert is a log line (the workflow logger: no command, nothing logged
// again on replay) and, with alerts.webhookUrl set, a sendAlert activity that
// POSTs it. Its activity never fails (it reports a webhook that is down and
// returns) and is bounded to about a minute; it runs outside any cancellation
// scope of the migration. Alerts of a running migration (lag, WAL retention,
// mismatch during the cutover) are started and not awaited, so a slow webhook
// holds nothing up; the failure alert is awaited, since the run ends right
// after it. New commands: behind patched('alerts') (README "Contributing").
import { ActivityCancellationType, CancellationScope, log, patched, proxySinks } from '@temporalio/workflow';
import { type Alert, ddlAlert, failureAlert, incrementalMismatchAlert, mismatchAlert, newAlertingState, roundAlerts } from '../lib/alerts';
import type { IncrementalMismatchView } from '../lib/incremental-verification';
import type { CaptureProgress, DdlEvent } from '../lib/capture-progress';
import type { Config } from '../lib/config';
import type { RootCause } from '../lib/failure';
import type { PgshiftSinks } from '../lib/metrics-sink';
import type { DataVerification } from '../lib/verification-progress';
import type { ActivityProxies } from './phases/contract';

const { pgshift } = proxySinks<PgshiftSinks>();

/** The worker's pgshift_phase series follows the workflow (a sink: no command). */
export function reportPhase(migration: string, phase: string): void {
  pgshift.phase(migration, phase);
}

/** Log the alert and, with a webhook, POST it; the promise never rejects. */
export function raiseAlert(acts: ActivityProxies, config: Config, alert: Alert): Promise<void> {
  const line = `pgshift alert: ${alert.kind} (${alert.severity}) in migration ${alert.migration}: ${alert.message}`;
  if (alert.severity === 'resolved') log.info(line, { alert });
  else log.warn(line, { alert });
  const url = config.alerts.webhookUrl;
  if (!url || !patched('alerts')) return Promise.resolve();
  return CancellationScope.nonCancellable(() =>
    acts.sendAlert.executeWithOptions(
      {
        startToCloseTimeout: '1m',
        scheduleToCloseTimeout: '2m',
        heartbeatTimeout: '15s',
        retry: { maximumAttempts: 1 },
        cancellationType: ActivityCancellationType.TRY_CANCEL,
        summary: `alert ${alert.kind} (${alert.severity}) to the webhook`,
      },
      [{ url, alert }],
    ),
  ).then(
    () => undefined,
    () => undefined,
  );
}

/** After an apply round: lag above alerts.lagSeconds, slot WAL near its limit — each once when it starts and once when it ends. */
export function alertOnApplyRound(acts: ActivityProxies, config: Config, p: CaptureProgress, wal = p.wal): void {
  p.alerting ??= newAlertingState();
  const now = new Date().toISOString();
  for (const a of roundAlerts(config.name, p.alerting, { lagSeconds: p.lagSeconds, lagBytes: p.lagBytes, wal }, config.alerts.lagSeconds, now)) {
    void raiseAlert(acts, config, a);
  }
}

/** DDL events of an apply round that were not replayed (a stopped-at entry once, however many rounds meet it). */
export function alertOnDdl(acts: ActivityProxies, config: Config, events: DdlEvent[], alreadyBlocked: number | null): void {
  for (const ev of events) {
    if (ev.what !== 'reported' && ev.what !== 'blocked') continue;
    if (ev.what === 'blocked' && ev.entry === alreadyBlocked) continue;
    void raiseAlert(acts, config, ddlAlert(config.name, ev, new Date().toISOString()));
  }
}

export function alertOnFailure(acts: ActivityProxies, config: Config, phase: string, cause: RootCause): Promise<void> {
  return raiseAlert(acts, config, failureAlert(config.name, phase, cause, new Date().toISOString()));
}

export function alertOnIncrementalMismatch(acts: ActivityProxies, config: Config, mismatches: IncrementalMismatchView[]): Promise<void> {
  return raiseAlert(acts, config, incrementalMismatchAlert(config.name, mismatches, new Date().toISOString()));
}

export function alertOnMismatch(acts: ActivityProxies, config: Config, v: DataVerification): Promise<void> {
  return raiseAlert(acts, config, mismatchAlert(config.name, v, new Date().toISOString()));
}
