// The worker's metrics endpoint (`pgshift worker --metrics-port N`) serves the
// series README "Monitoring" documents, labelled by migration, with the
// values of a real online migration: rows copied by the full load, changes
// applied, lag and WAL retained during the incremental phase, the phase, the
// verification counters of a `pgshift verify`; and the Temporal SDK's own
// runtime metrics on the same endpoint.
import { describe, expect, it } from 'vitest';
import { abort, getStatus, startMigration, verify, waitForMigration } from '../client';
import { freePort } from '../worker/metrics';
import { ONLINE_TABLES } from './fixtures/online-workload';
import { clusters, temporalClient, uid } from './harness/env';
import { onlineConfig, onlinePair, waitUntilApplied } from './harness/online';
import { waitUntil } from './harness/wait';
import { spawnWorker } from './harness/worker-process';

/** Prometheus text → samples by series name. */
function parse(text: string): Map<string, { labels: Record<string, string>; value: number }[]> {
  const out = new Map<string, { labels: Record<string, string>; value: number }[]>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    out.set(m[1], [...(out.get(m[1]) ?? []), { labels, value: Number(m[3]) }]);
  }
  return out;
}

describe('worker metrics', () => {
  it('serves the documented series of an online migration, and the Temporal SDK runtime metrics', async () => {
    const cs = clusters();
    const pair = await onlinePair(cs.pg15, cs.pg18);
    const taskQueue = `tq-${uid()}`;
    const config = onlineConfig(pair, { taskQueue });
    const port = await freePort();
    const worker = await spawnWorker(taskQueue, ['--metrics-port', String(port), '--metrics-host', '127.0.0.1']);
    const client = await temporalClient();
    const scrape = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await res.text();
      return { text, series: parse(text) };
    };
    const valueOf = (series: ReturnType<typeof parse>, name: string, labels: Record<string, string> = {}) =>
      series.get(name)?.find((s) => s.labels.migration === config.name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    try {
      await startMigration(client, config);
      await waitUntil('the incremental phase', async () => ['incremental', 'failed'].includes((await getStatus(client, config.name)).state.phase), {
        timeoutMs: 90_000,
        everyMs: 250,
      });
      await pair.source.sql(`INSERT INTO shop.events SELECT nextval('shop.event_ids'), clock_timestamp(), 'm' FROM generate_series(1, 500)`);
      await waitUntilApplied(pair, config, 30_000);
      // The apply beats every 2 s: its next beat has counted the rows.
      await waitUntil('the apply’s beat counted the rows', async () => (valueOf((await scrape()).series, 'pgshift_apply_changes_total') ?? 0) >= 500, {
        timeoutMs: 15_000,
        everyMs: 500,
      });
      const { result } = await verify(client, config.name, { schema: false, data: true });
      expect(result.consistent).toBe(true);

      const { text, series } = await scrape();
      for (const name of [
        'pgshift_apply_lag_seconds',
        'pgshift_apply_lag_bytes',
        'pgshift_slot_wal_retained_bytes',
        'pgshift_apply_changes_total',
        'pgshift_apply_transactions_total',
        'pgshift_apply_changes_per_second',
        'pgshift_copy_rows_total',
        'pgshift_copy_bytes_total',
        'pgshift_copy_chunks_total',
        'pgshift_copy_rows_per_second',
        'pgshift_verify_rows_total',
      ]) {
        expect(valueOf(series, name), name).toBeGreaterThanOrEqual(0);
        expect(text, name).toMatch(new RegExp(`^# HELP ${name} `, 'm'));
        expect(text, name).toMatch(new RegExp(`^# TYPE ${name} (counter|gauge)$`, 'm'));
      }
      // The seed: 2,000 customers, 6,000 orders, 18,000 items, 400 docs, … — all copied.
      expect(valueOf(series, 'pgshift_copy_rows_total')).toBeGreaterThanOrEqual(27_000);
      expect(valueOf(series, 'pgshift_copy_bytes_total')).toBeGreaterThan(1_000_000);
      expect(valueOf(series, 'pgshift_copy_chunks_total')).toBeGreaterThanOrEqual(ONLINE_TABLES.length);
      expect(valueOf(series, 'pgshift_apply_changes_total')).toBeGreaterThanOrEqual(500);
      expect(valueOf(series, 'pgshift_apply_transactions_total')).toBeGreaterThan(0);
      expect(valueOf(series, 'pgshift_apply_lag_bytes')).toBeGreaterThanOrEqual(0);
      expect(valueOf(series, 'pgshift_slot_wal_retained_bytes')).toBeGreaterThan(0);
      expect(valueOf(series, 'pgshift_phase', { phase: 'incremental' })).toBe(1);
      expect(series.get('pgshift_phase')!.filter((s) => s.labels.migration === config.name)).toHaveLength(1);
      expect(valueOf(series, 'pgshift_verify_tables_total', { result: 'consistent' })).toBe(ONLINE_TABLES.length);
      expect(valueOf(series, 'pgshift_verify_tables_total', { result: 'inconsistent' }) ?? 0).toBe(0);
      expect(valueOf(series, 'pgshift_verify_rows_total')).toBeGreaterThanOrEqual(27_000);
      // Between two apply rounds none runs for a moment.
      expect([0, 1]).toContain(valueOf(series, 'pgshift_activities_running', { activity: 'applyChanges' }));
      // Node's process metrics and the Temporal SDK's runtime metrics, on the same endpoint.
      expect(series.has('process_cpu_user_seconds_total')).toBe(true);
      const temporal = [...series.keys()].filter((k) => k.startsWith('temporal_'));
      expect(temporal).toEqual(expect.arrayContaining(['temporal_workflow_completed', 'temporal_activity_execution_latency_count']));

      await abort(client, config.name);
      expect((await waitForMigration(client, config.name)).state.phase).toBe('aborted');
      const after = (await scrape()).series;
      expect(valueOf(after, 'pgshift_phase', { phase: 'aborted' })).toBe(1);
      expect(valueOf(after, 'pgshift_phase', { phase: 'incremental' })).toBeUndefined();
      // A migration that ended has no lag.
      expect(valueOf(after, 'pgshift_apply_lag_seconds')).toBeUndefined();
    } finally {
      await client.connection.close();
      await worker.kill('SIGTERM');
    }
  });
});
