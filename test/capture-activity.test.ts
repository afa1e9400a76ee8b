// applyChanges as the worker registers it (retry windows, keep-alive), run in
// Temporal's activity environment: its heartbeats carry the position and lag,
// and a cancellation ends it promptly at a destination commit, returning the
// round's result (what it applied stays counted). And the throttle:
// rows/s applied at the configured rate, changed while running.
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createActivities } from '../activities';
import { applyChanges, type ApplyBeat } from '../activities/capture/apply';
import { prepareSource } from '../activities/capture/prepare-source';
import { parseLsn } from '../lib/capture/lsn';
import { capturePair } from './harness/capture';
import { appliedLsn, sourceInsertLsn } from './harness/capture-compare';
import { waitUntil } from './harness/wait';

async function simplePair() {
  const pair = await capturePair();
  const ddl = 'CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text)';
  await pair.sourceAsRole(ddl);
  await pair.destinationAsRole(ddl);
  const config = pair.config({ objects: { schemas: ['app'] } });
  await prepareSource({ config, runToken: pair.runToken });
  return { pair, config };
}

describe('applyChanges as an activity', () => {
  it('heartbeats its position and lag, and stops promptly with its result when cancelled', async () => {
    const { pair, config } = await simplePair();
    const env = new MockActivityEnvironment();
    const beats: ApplyBeat[] = [];
    env.on('heartbeat', (d: unknown) => d && beats.push(d as ApplyBeat));
    const running = env.run(createActivities().applyChanges, { config, runToken: pair.runToken });
    await pair.source.sql(`INSERT INTO app.t SELECT g, 'v' || g FROM generate_series(1, 1000) g`);
    const target = parseLsn(await sourceInsertLsn(pair.source));
    const beat = await waitUntil('a heartbeat past the writes', async () => beats.find((b) => parseLsn(b.appliedLsn) >= target && b.lagSeconds !== null), {
      timeoutMs: 20_000,
    });
    expect(beat).toMatchObject({ changes: 1000, replicaRole: true, fallbacks: 0, rowsPerSecond: null });
    expect(beat.lagSeconds!).toBeLessThan(5);
    expect(await pair.destination.sql('SELECT count(*)::int AS n FROM app.t')).toEqual([{ n: 1000 }]);
    const t0 = Date.now();
    env.cancel();
    const r = (await running) as Awaited<ReturnType<typeof applyChanges>>;
    expect(Date.now() - t0).toBeLessThan(2000);
    // A cancelled round returns like one that ran its time: the workflow counts what it applied.
    expect(r).toMatchObject({ changes: 1000, transactions: expect.any(Number) });
    expect(parseLsn(r.appliedLsn)).toBeGreaterThanOrEqual(target);
  });

  it('applies at the throttled rate and follows a throttle change while running', async () => {
    const { pair, config } = await simplePair();
    for (let i = 0; i < 30; i++) await pair.source.sql(`INSERT INTO app.t SELECT g, 'v' FROM generate_series(${i * 200 + 1}, ${(i + 1) * 200}) g`);
    const target = await sourceInsertLsn(pair.source);
    const t0 = Date.now();
    const beats: ApplyBeat[] = [];
    // 1,000 rows/s for 1.5 s, then unlimited.
    const throttle = { current: async () => (Date.now() - t0 < 1500 ? 1000 : null) };
    const r = await applyChanges(
      { config, runToken: pair.runToken, stopAtLsn: target, rowsPerSecond: 1000 },
      { throttle, onBeat: (b) => beats.push(b), tuning: { beatMs: 200 } },
    );
    const seconds = (Date.now() - t0) / 1000;
    expect(r.changes).toBe(6000);
    expect(seconds).toBeGreaterThan(1.3); // ~1,500 rows paced at 1,000/s
    expect(seconds).toBeLessThan(4.5); // not 6 s: the limit was lifted
    const during = beats.filter((b) => b.rowsPerSecond === 1000);
    expect(during.length).toBeGreaterThan(2);
    // While limited, the applied rate stayed within 10 % of the limit (plus one burst).
    const limited = during.at(-1)!;
    expect(limited.changes).toBeLessThan(1000 * 1.6 * 1.1 + 100);
    expect(beats.at(-1)!.rowsPerSecond).toBeNull();
  });

  it('moves its position with keepalives when the source writes only outside the publication', async () => {
    const { pair, config } = await simplePair();
    const beats: ApplyBeat[] = [];
    const abort = new AbortController();
    // No source heartbeat: only keepalives can move the position.
    const running = applyChanges(
      { config, runToken: pair.runToken },
      { signal: abort.signal, onBeat: (b) => beats.push(b), tuning: { beatMs: 200, sourceBeatMs: 3_600_000 } },
    );
    try {
      await waitUntil('the apply runs', async () => beats.length > 0, { timeoutMs: 20_000 });
      // WAL from another database: never decoded for this slot, but the walsender passes it.
      await pair.source.cluster.sql('CREATE TEMP TABLE scratch AS SELECT g FROM generate_series(1, 10000) g');
      const [{ l }] = await pair.source.cluster.sql<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l');
      const moved = await waitUntil('the position passes WAL written elsewhere', async () => beats.find((b) => parseLsn(b.appliedLsn) >= parseLsn(l)), {
        timeoutMs: 20_000,
      });
      expect(moved.changes).toBe(0);
      // The position is persisted too (nothing was applied below it), at most a second later.
      await waitUntil('the destination records the position', async () => (await appliedLsn(config)) >= parseLsn(l), { timeoutMs: 5_000 });
    } finally {
      abort.abort();
      await running.catch(() => undefined);
    }
  });
});
