// Alerts reach a webhook: a local HTTP receiver gets the JSON payloads of a
// lag alert (an online migration whose apply is throttled far below the
// inserts, alerts.lagSeconds 2), its resolution once the throttle is lifted,
// and a failure alert (a migration whose schema stage collides with the
// destination) — none of them with a password in it. A webhook that is down
// costs the migration nothing: sendAlert reports it and returns.
import { describe, expect, it } from 'vitest';
import { sendAlert } from '../activities/alerts';
import { abort, startMigration, throttle, waitForMigration } from '../client';
import { failureAlert, newAlertingState, redact, roundAlerts } from '../lib/alerts';
import { freePort } from '../worker/metrics';
import { clusters, makePair, temporalClient, uid, withWorker } from './harness/env';
import { onlineConfig, onlinePair } from './harness/online';
import { sleep, waitUntil } from './harness/wait';
import { alertReceiver } from './harness/webhook';

describe('alerts', () => {
  it('lag above alerts.lagSeconds (and back below) and a failure reach the webhook as JSON, without a password', async () => {
    const hook = await alertReceiver('/hooks/pgshift?token=t0ken');
    const cs = clusters();
    const taskQueue = `tq-${uid()}`;
    // Lag: incremental only (no full load), the apply throttled to 2,000 rows/s.
    const online = await onlinePair(cs.pg15, cs.pg18, { destinationHasData: true });
    const lagConfig = onlineConfig(online, {
      taskQueue,
      mode: { schema: false, full: false, incremental: true },
      throttle: { incrementalRowsPerSecond: 2000 },
      alerts: { lagSeconds: 2, webhookUrl: hook.url },
    });
    // Failure: the schema stage's CREATE TYPE collides with a type already on the destination.
    const failing = await makePair();
    await failing.source.sql("CREATE TYPE public.mood AS ENUM ('sad', 'ok'); CREATE TABLE public.t (id int PRIMARY KEY, m public.mood)");
    await failing.destination.sql(`CREATE TYPE public.mood AS ENUM ('x'); ALTER TYPE public.mood OWNER TO ${failing.destination.user}`);
    const failConfig = failing.config({ taskQueue, mode: { schema: true, full: true, incremental: false }, alerts: { lagSeconds: 30, webhookUrl: hook.url } });
    const passwords = [online.source, online.destination, failing.source, failing.destination].map((s) => process.env[s.passwordEnv]!);
    const client = await temporalClient();
    const of = (name: string, kind: string, severity?: string) =>
      hook.received.filter((r) => r.alert.migration === name && r.alert.kind === kind && (!severity || r.alert.severity === severity));
    try {
      await withWorker(taskQueue, async () => {
        await startMigration(client, lagConfig);
        await startMigration(client, failConfig);
        // Inserts only, ~10,000 rows/s against an apply of 2,000 rows/s: the lag grows every second.
        let writing = true;
        const workload = (async () => {
          while (writing) {
            await online.source.sql(`INSERT INTO shop.events SELECT nextval('shop.event_ids'), clock_timestamp(), 'w' FROM generate_series(1, 2000)`);
            await sleep(200);
          }
        })();
        try {
          await waitUntil('a lag alert', async () => of(lagConfig.name, 'lag', 'warning').length > 0, { timeoutMs: 50_000, everyMs: 250 });
        } finally {
          writing = false;
          await workload;
        }
        await waitForMigration(client, failConfig.name).catch(() => undefined);
        await waitUntil('the failure alert', async () => of(failConfig.name, 'failure').length > 0, { timeoutMs: 10_000, everyMs: 100 });
        // Unthrottled, the apply catches up: the next round resolves the lag alert.
        await throttle(client, lagConfig.name, { incrementalRowsPerSecond: null });
        await waitUntil('the lag alert resolved', async () => of(lagConfig.name, 'lag', 'resolved').length > 0, { timeoutMs: 50_000, everyMs: 250 });
        await abort(client, lagConfig.name);
        await waitForMigration(client, lagConfig.name);
      });
    } finally {
      await client.connection.close();
      await hook.close();
    }

    const [lag] = of(lagConfig.name, 'lag', 'warning');
    expect(lag.path).toBe('/hooks/pgshift?token=t0ken');
    expect(lag.headers['content-type']).toBe('application/json');
    expect(lag.alert).toEqual({
      migration: lagConfig.name,
      kind: 'lag',
      severity: 'warning',
      message: expect.stringMatching(/^apply lag \d+\.\d s is above alerts\.lagSeconds \(2 s\)/),
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      details: { lagSeconds: expect.any(Number), lagBytes: expect.any(Number), thresholdSeconds: 2 },
    });
    expect(lag.alert.details.lagSeconds).toBeGreaterThan(2);
    // Once per crossing, not once per round: warnings and resolutions alternate (the lag may cross more than once
    // while the throttled apply drains, and lag measured from heartbeat commits moves by a second or so on a loaded machine).
    const crossings = of(lagConfig.name, 'lag').map((r) => r.alert.severity);
    expect(
      crossings.filter((c, i) => c === crossings[i - 1]),
      `lag alerts in order: ${crossings.join(', ')}`,
    ).toEqual([]);
    expect(crossings[0]).toBe('warning');
    expect(of(lagConfig.name, 'lag', 'resolved')[0].alert.message).toMatch(/^apply lag is back to \d+\.\d s/);

    const [failure] = of(failConfig.name, 'failure');
    expect(failure.alert).toEqual({
      migration: failConfig.name,
      kind: 'failure',
      severity: 'critical',
      message: expect.stringMatching(/^migration failed in schema: enum public\.mood already exists on the destination .*\[42710\]/),
      at: expect.any(String),
      details: { phase: 'schema', type: 'InvalidInput', activity: 'applySchemaStage' },
    });
    expect(of(failConfig.name, 'failure')).toHaveLength(1);
    for (const r of hook.received) for (const p of passwords) expect(r.raw).not.toContain(p);
  });

  it('a webhook that is down: sendAlert retries, reports it and returns', async () => {
    const url = `http://127.0.0.1:${await freePort()}/down`;
    const alert = failureAlert('m', 'schema', { message: 'x', type: null, activity: null }, new Date().toISOString());
    const started = Date.now();
    const r = await sendAlert({ url, alert, attempts: 2, timeoutMs: 500 });
    expect(r).toMatchObject({ delivered: false, attempts: 2, status: null });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('each condition alerts once when it starts and once when it ends; WAL retention near max_slot_wal_keep_size', () => {
    const s = newAlertingState();
    const wal = (safe: number | null, status = 'reserved') => ({ retainedBytes: 900, safeBytes: safe, maxKeepBytes: 1000, walStatus: status });
    const kinds = (round: Parameters<typeof roundAlerts>[2]) => roundAlerts('m', s, round, 10, 'now').map((a) => `${a.kind}:${a.severity}`);
    expect(kinds({ lagSeconds: 5, lagBytes: 1, wal: wal(500) })).toEqual([]);
    expect(kinds({ lagSeconds: 12, lagBytes: 1, wal: wal(100) })).toEqual(['lag:warning', 'wal-retention:warning']);
    expect(kinds({ lagSeconds: 20, lagBytes: 1, wal: wal(50) })).toEqual([]);
    // Hysteresis: just below the threshold is not yet resolved.
    expect(kinds({ lagSeconds: 9, lagBytes: 1, wal: wal(250) })).toEqual([]);
    expect(kinds({ lagSeconds: 7, lagBytes: 1, wal: wal(400) })).toEqual(['lag:resolved', 'wal-retention:resolved']);
    expect(kinds({ lagSeconds: null, lagBytes: null, wal: wal(null, 'lost') })).toEqual(['wal-retention:critical']);
    // PG11/12 (no safe_wal_size) and no limit: nothing to tell.
    expect(roundAlerts('m', newAlertingState(), { lagSeconds: 0, lagBytes: 0, wal: { ...wal(null), maxKeepBytes: null, walStatus: null } }, 10, 'now')).toEqual(
      [],
    );
    expect(redact('could not connect to postgres://app:s3cret@db:5432/x password=hunter2')).toBe(
      'could not connect to postgres://app:***@db:5432/x password=***',
    );
  });
});
