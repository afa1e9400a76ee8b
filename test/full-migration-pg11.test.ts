// The managed service's engine pair, PostgreSQL 11 → 14: schema, full load,
// keys, indexes, foreign keys, sequences and both verifications through the
// workflow, on the online-workload schema (its SQL is 11's).
import { describe, expect, it } from 'vitest';
import { verifyTableData } from '../activities/verify-data';
import { startMigration, waitForMigration } from '../client';
import { createOnlineSource, expectOnlineTablesIdentical, ONLINE_SCHEMA } from './fixtures/online-workload';
import { clusters, makePair, temporalClient, uid, withWorker } from './harness/env';

describe('full migration 11 → 14', () => {
  it('migrates schema and data from PostgreSQL 11 to 14 and verifies both clean', async () => {
    const pair = await makePair({ source: clusters().pg11, destination: clusters().pg14 });
    await createOnlineSource(pair);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: true, full: true, incremental: false },
      objects: { schemas: [ONLINE_SCHEMA] },
      fullLoad: { chunkMb: 1 },
    });
    const client = await temporalClient();
    const final = await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      return waitForMigration(client, config.name);
    });
    expect(final.state.errors).toEqual([]);
    expect(final.state.phase).toBe('done');
    expect(final.state.schema.verification!.differences).toEqual([]);
    const tables = Object.values(final.state.dataVerification!.tables);
    expect(tables.length).toBe(9);
    expect(tables.every((t) => t.consistent)).toBe(true);
    // From 11 too, every range is proved by the copy's fingerprint and an unchanged source (txid snapshots, xmin ages).
    const again = await Promise.all(Object.keys(final.state.dataVerification!.tables).map((table) => verifyTableData({ config, table })));
    expect(again.map((t) => [t.display, t.consistent, t.fingerprintedRanges])).toEqual(again.map((t) => [t.display, true, t.ranges]));
    await expectOnlineTablesIdentical(pair);
    // The sequence continues where the source's does.
    expect(await pair.destination.sql('SELECT last_value::text AS v FROM shop.event_ids')).toEqual([{ v: '1000' }]);
  });
});
