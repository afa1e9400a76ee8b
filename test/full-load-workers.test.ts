// Full load across worker processes: SIGKILL one mid-copy and start another
// (only unfinished chunks are copied again), and two workers sharing a load.
import { describe, expect, it } from 'vitest';
import { startMigration, waitForMigration } from '../client';
import { edgePair, expectEdgeTablesIdentical } from './fixtures/edge-values';
import { type Pair, temporalClient, uid } from './harness/env';
import { spawnWorker } from './harness/worker-process';
import { waitUntil } from './harness/wait';

interface ChunkRow {
  table_key: string;
  chunk: number;
  copied_by: string;
  copied_at: string;
}

async function doneChunks(pair: Pair): Promise<ChunkRow[]> {
  return pair.destination
    .sql<ChunkRow>(`SELECT table_key, chunk, copied_by, copied_at::text FROM pgshift.chunks WHERE migration = $1 AND state = 'done' ORDER BY 1, 2`, [pair.name])
    .catch(() => []);
}

async function setUp(throttleRows: number | null) {
  const pair = await edgePair();
  const taskQueue = `tq-${uid()}`;
  const config = pair.config({
    taskQueue,
    mode: { schema: false, full: true, incremental: false },
    fullLoad: { chunkMb: 1 },
    parallelism: { tables: 2, indexes: 1 },
    throttle: { fullRowsPerSecond: throttleRows },
  });
  return { pair, taskQueue, config };
}

describe('full load with worker processes', () => {
  it('survives SIGKILL of the worker mid-copy; finished chunks are not copied again', async () => {
    const { pair, taskQueue, config } = await setUp(8000);
    const client = await temporalClient();
    const w1 = await spawnWorker(taskQueue);
    await startMigration(client, config);
    // Wait until some, not all, chunks are done, then kill the worker outright.
    await waitUntil(
      'two chunks are copied',
      async () => {
        const done = await doneChunks(pair);
        return done.length >= 2 && done;
      },
      { timeoutMs: 150_000 },
    );
    await w1.kill('SIGKILL');
    const before: ChunkRow[] = await doneChunks(pair);
    const total = await pair.destination.sql<{ n: string }>('SELECT count(*) AS n FROM pgshift.chunks WHERE migration = $1', [pair.name]);
    expect(before.length, w1.output()).toBeGreaterThan(0);
    expect(before.length).toBeLessThan(Number(total[0].n));

    const w2 = await spawnWorker(taskQueue);
    try {
      const final = await waitForMigration(client, config.name);
      expect(final.state.phase).toBe('done');
    } finally {
      await w2.kill('SIGTERM');
    }
    const after = await doneChunks(pair);
    expect(after.length).toBe(Number(total[0].n));
    // Chunks finished before the kill kept their copy (same worker, same time).
    const afterByKey = new Map(after.map((c) => [`${c.table_key}#${c.chunk}`, c]));
    for (const c of before) expect(afterByKey.get(`${c.table_key}#${c.chunk}`)).toEqual(c);
    const pid1 = `:${w1.child.pid}`;
    const pid2 = `:${w2.child.pid}`;
    expect(after.filter((c) => c.copied_by.endsWith(pid1)).length).toBe(before.length);
    expect(after.filter((c) => c.copied_by.endsWith(pid2)).length).toBe(after.length - before.length);
    await expectEdgeTablesIdentical(pair);
    await client.connection.close();
  });

  it('shares one full load between two workers', async () => {
    const { pair, taskQueue, config } = await setUp(20000);
    const client = await temporalClient();
    // One activity at a time per worker: two copies in flight need both workers.
    const [w1, w2] = await Promise.all([spawnWorker(taskQueue, ['--max-activities', '1']), spawnWorker(taskQueue, ['--max-activities', '1'])]);
    try {
      await startMigration(client, config);
      expect((await waitForMigration(client, config.name)).state.phase).toBe('done');
    } finally {
      await Promise.all([w1.kill('SIGTERM'), w2.kill('SIGTERM')]);
    }
    const by = new Set((await doneChunks(pair)).map((c) => c.copied_by));
    expect(by.size).toBe(2);
    await expectEdgeTablesIdentical(pair);
    await client.connection.close();
  });
});
