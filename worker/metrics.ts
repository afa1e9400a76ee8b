// Prometheus metrics of a pgshift worker (`pgshift worker --metrics-port N`),
// with prom-client. The worker runs the activities, so the activities feed
// them as they work: the apply's beats (lag, WAL retained, changes applied),
// the chunk copies' beats (rows and bytes copied), the data verification's
// results. The phase comes from the workflow through a sink (no I/O, no
// command in its history). GET /metrics also serves the Temporal SDK's own
// runtime metrics (temporal_*), scraped from the SDK's exporter on a local
// port. Names and labels are documented in README "Monitoring".
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkflowInfo } from '@temporalio/workflow';
import type { InjectedSinks } from '@temporalio/worker';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { SlotWal } from '../lib/capture-progress';
import type { PgshiftSinks } from '../lib/metrics-sink';

export const registry = new Registry();
const migration = ['migration'] as const;
const registers = [registry];

/** Rows/s over the last RATE_WINDOW_MS, per migration, from the counts the activities report. */
const RATE_WINDOW_MS = 10_000;
class RateWindow {
  private readonly events = new Map<string, { at: number; n: number }[]>();
  add(key: string, n: number): void {
    if (n <= 0) return;
    const list = this.events.get(key) ?? [];
    list.push({ at: Date.now(), n });
    this.events.set(key, list);
  }
  rates(): [string, number][] {
    const since = Date.now() - RATE_WINDOW_MS;
    return [...this.events].map(([key, list]) => {
      const kept = list.filter((e) => e.at >= since);
      this.events.set(key, kept);
      return [key, kept.reduce((a, e) => a + e.n, 0) / (RATE_WINDOW_MS / 1000)];
    });
  }
}
const copyRates = new RateWindow();
const applyRates = new RateWindow();

const m = {
  lagSeconds: new Gauge({
    name: 'pgshift_apply_lag_seconds',
    help: 'Apply lag: source clock minus the source time of the newest applied heartbeat',
    labelNames: migration,
    registers,
  }),
  lagBytes: new Gauge({
    name: 'pgshift_apply_lag_bytes',
    help: 'Source WAL not yet confirmed by the slot (current position minus confirmed_flush_lsn)',
    labelNames: migration,
    registers,
  }),
  walRetained: new Gauge({
    name: 'pgshift_slot_wal_retained_bytes',
    help: 'WAL the replication slot keeps on the source (current position minus restart_lsn)',
    labelNames: migration,
    registers,
  }),
  walSafe: new Gauge({
    name: 'pgshift_slot_wal_safe_bytes',
    help: 'WAL that can still be written before max_slot_wal_keep_size invalidates the slot (safe_wal_size, PG13+ with a limit set)',
    labelNames: migration,
    registers,
  }),
  changesApplied: new Counter({ name: 'pgshift_apply_changes_total', help: 'Row changes applied on the destination', labelNames: migration, registers }),
  transactionsApplied: new Counter({
    name: 'pgshift_apply_transactions_total',
    help: 'Source transactions applied (or passed over) by the apply',
    labelNames: migration,
    registers,
  }),
  applyRate: new Gauge({
    name: 'pgshift_apply_changes_per_second',
    help: `Row changes applied per second over the last ${RATE_WINDOW_MS / 1000} s`,
    labelNames: migration,
    registers,
    collect() {
      for (const [k, v] of applyRates.rates()) this.set({ migration: k }, v);
    },
  }),
  rowsCopied: new Counter({ name: 'pgshift_copy_rows_total', help: 'Rows copied by the full load', labelNames: migration, registers }),
  bytesCopied: new Counter({ name: 'pgshift_copy_bytes_total', help: 'Bytes of COPY data copied by the full load', labelNames: migration, registers }),
  chunksCopied: new Counter({ name: 'pgshift_copy_chunks_total', help: 'Full-load chunks copied', labelNames: migration, registers }),
  copyRate: new Gauge({
    name: 'pgshift_copy_rows_per_second',
    help: `Rows copied per second over the last ${RATE_WINDOW_MS / 1000} s`,
    labelNames: migration,
    registers,
    collect() {
      for (const [k, v] of copyRates.rates()) this.set({ migration: k }, v);
    },
  }),
  phase: new Gauge({ name: 'pgshift_phase', help: 'The migration phase: 1 for the current one', labelNames: ['migration', 'phase'] as const, registers }),
  verifiedTables: new Counter({
    name: 'pgshift_verify_tables_total',
    help: 'Tables compared by data verification, by result (consistent, inconsistent)',
    labelNames: ['migration', 'result'] as const,
    registers,
  }),
  verifiedRows: new Counter({ name: 'pgshift_verify_rows_total', help: 'Source rows compared by data verification', labelNames: migration, registers }),
  alerts: new Counter({
    name: 'pgshift_alerts_total',
    help: 'Alerts POSTed to alerts.webhookUrl, by kind and outcome (delivered, failed)',
    labelNames: ['migration', 'kind', 'outcome'] as const,
    registers,
  }),
  activities: new Gauge({
    name: 'pgshift_activities_running',
    help: 'Activities running on this worker, by type',
    labelNames: ['migration', 'activity'] as const,
    registers,
  }),
};

const TERMINAL = new Set(['done', 'failed', 'aborted']);
const phases = new Map<string, string>();

/** The workflow entered `phase`; a migration that ended drops its lag and WAL series. */
export function setPhase(name: string, phase: string): void {
  const before = phases.get(name);
  if (before && before !== phase) m.phase.remove({ migration: name, phase: before });
  phases.set(name, phase);
  m.phase.set({ migration: name, phase }, 1);
  if (TERMINAL.has(phase)) for (const g of [m.lagSeconds, m.lagBytes, m.walRetained, m.walSafe]) g.remove({ migration: name });
}

export function countAlert(name: string, kind: string, delivered: boolean): void {
  m.alerts.inc({ migration: name, kind, outcome: delivered ? 'delivered' : 'failed' });
}

/** The sinks workflows call (registered on every worker; called during replay too, so a restarted worker knows the phase). */
export function workerSinks(): InjectedSinks<PgshiftSinks> {
  return {
    pgshift: {
      phase: { fn: (_info: WorkflowInfo, name: string, phase: string) => setPhase(name, phase), callDuringReplay: true },
    },
  };
}

interface ApplyProgress {
  changes: number;
  transactions: number;
  lagSeconds: number | null;
  lagBytes: number | null;
  wal?: SlotWal | null;
}

/**
 * What one activity run reports: its beats and its result carry running
 * totals of that run; counters get the increase since the last report.
 */
export interface ActivityMeter {
  beat(details: unknown): void;
  result(r: unknown): void;
  end(): void;
}

export function activityMeter(activity: string, name: string): ActivityMeter {
  const labels = { migration: name };
  m.activities.inc({ migration: name, activity });
  const seen = { rows: 0, bytes: 0, changes: 0, transactions: 0 };
  const copied = (p: { rows?: number; bytes?: number }) => {
    const rows = Math.max(0, (p.rows ?? seen.rows) - seen.rows);
    const bytes = Math.max(0, (p.bytes ?? seen.bytes) - seen.bytes);
    seen.rows += rows;
    seen.bytes += bytes;
    if (rows) m.rowsCopied.inc(labels, rows);
    if (bytes) m.bytesCopied.inc(labels, bytes);
    copyRates.add(name, rows);
  };
  const applied = (p: ApplyProgress) => {
    const changes = Math.max(0, p.changes - seen.changes);
    const transactions = Math.max(0, p.transactions - seen.transactions);
    seen.changes += changes;
    seen.transactions += transactions;
    if (changes) m.changesApplied.inc(labels, changes);
    if (transactions) m.transactionsApplied.inc(labels, transactions);
    applyRates.add(name, changes);
    if (p.lagSeconds !== null) m.lagSeconds.set(labels, p.lagSeconds);
    if (p.lagBytes !== null) m.lagBytes.set(labels, p.lagBytes);
    if (p.wal?.retainedBytes != null) m.walRetained.set(labels, p.wal.retainedBytes);
    if (p.wal?.safeBytes != null) m.walSafe.set(labels, p.wal.safeBytes);
  };
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
  return {
    beat(details) {
      if (!isObject(details)) return;
      if (activity === 'copyChunk') copied(details as { rows?: number; bytes?: number });
      else if (activity === 'applyChanges' && typeof details.changes === 'number') applied(details as unknown as ApplyProgress);
    },
    result(r) {
      if (!isObject(r)) return;
      if (activity === 'copyChunk' && !r.skipped) {
        copied(r as { rows?: number; bytes?: number });
        m.chunksCopied.inc(labels);
      } else if (activity === 'applyChanges' && typeof r.changes === 'number') applied(r as unknown as ApplyProgress);
      else if (activity === 'verifyTableData' && typeof r.consistent === 'boolean') {
        m.verifiedTables.inc({ migration: name, result: r.consistent ? 'consistent' : 'inconsistent' });
        if (typeof r.rowsSource === 'number') m.verifiedRows.inc(labels, r.rowsSource);
      }
    },
    end() {
      m.activities.dec({ migration: name, activity });
    },
  };
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serve GET /metrics on `port` (0: any free one): pgshift's series, Node's
 * process metrics, and — when `temporalMetricsUrl` is given — the Temporal
 * SDK's runtime metrics fetched from its exporter and appended.
 */
export async function startMetricsServer(port: number, opts: { host?: string; temporalMetricsUrl?: string } = {}): Promise<MetricsServer> {
  collectDefaultMetrics({ register: registry });
  const temporal = async (): Promise<string> => {
    if (!opts.temporalMetricsUrl) return '';
    try {
      const res = await fetch(opts.temporalMetricsUrl, { signal: AbortSignal.timeout(2_000) });
      return res.ok ? await res.text() : `# temporal runtime metrics unavailable: HTTP ${res.status}\n`;
    } catch (e) {
      return `# temporal runtime metrics unavailable: ${(e as Error).message}\n`;
    }
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || (path !== '/metrics' && path !== '/')) {
      res.writeHead(404).end('not found: GET /metrics\n');
      return;
    }
    Promise.all([registry.metrics(), temporal()]).then(
      ([own, sdk]) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(own.endsWith('\n') ? own + sdk : `${own}\n${sdk}`);
      },
      (e) => res.writeHead(500).end(String(e)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, opts.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A free local TCP port (for the SDK's exporter, which needs a fixed address). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
