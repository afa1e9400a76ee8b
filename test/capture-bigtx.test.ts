// A source transaction far larger than any buffer: it streams through the
// apply in pieces (the stream pauses the socket when its queue is full), lands
// in ONE destination transaction, and the worker's memory stays bounded.
import { describe, expect, it } from 'vitest';
import { applyChanges } from '../activities/capture/apply';
import { prepareSource } from '../activities/capture/prepare-source';
import { capturePair } from './harness/capture';
import { sourceInsertLsn } from './harness/capture-compare';

const ROWS = 400_000;

describe('a large source transaction', () => {
  it(`applies a ${ROWS.toLocaleString('en')}-row transaction in bounded memory, as one destination transaction`, async () => {
    const pair = await capturePair();
    const ddl = 'CREATE SCHEMA app; CREATE TABLE app.big (id bigint PRIMARY KEY, payload text NOT NULL, n int NOT NULL)';
    await pair.sourceAsRole(ddl);
    await pair.destinationAsRole(ddl);
    const config = pair.config({ objects: { schemas: ['app'] } });
    await prepareSource({ config, runToken: pair.runToken });
    await pair.source.sql(`INSERT INTO app.big SELECT g, repeat(md5(g::text), 5), g % 1000 FROM generate_series(1, ${ROWS}) g`);
    const target = await sourceInsertLsn(pair.source);

    const base = process.memoryUsage();
    let peakHeap = base.heapUsed;
    let peakRss = base.rss;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakHeap = Math.max(peakHeap, m.heapUsed);
      peakRss = Math.max(peakRss, m.rss);
    }, 20);
    // The destination shows none of the rows, then all of them: one destination transaction.
    const seen = new Set<number>();
    let watching = true;
    const watcher = (async () => {
      const c = await pair.destination.cluster.connect(pair.destination.database);
      try {
        while (watching) {
          seen.add((await c.query<{ n: number }>('SELECT count(*)::int AS n FROM app.big')).rows[0].n);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        await c.end();
      }
    })();
    const t0 = Date.now();
    const queueBytes = 8 << 20;
    let r;
    try {
      r = await applyChanges({ config, runToken: pair.runToken, stopAtLsn: target }, { tuning: { queueBytes, queueItems: 20_000, pieceChanges: 5_000 } });
    } finally {
      clearInterval(sampler);
      watching = false;
      await watcher;
    }
    const ms = Date.now() - t0;
    console.log(
      `${ROWS} rows in one transaction applied in ${ms} ms (${Math.round(ROWS / (ms / 1000))} rows/s); ` +
        `heap +${Math.round((peakHeap - base.heapUsed) / 2 ** 20)} MB, rss peak ${Math.round(peakRss / 2 ** 20)} MB; stream ${JSON.stringify(r.stream)}`,
    );
    expect(r.changes).toBe(ROWS);
    // The socket was paused: the transaction was never held whole (it is ~170 MB of pgoutput).
    expect(r.stream.pauses).toBeGreaterThan(0);
    expect(r.stream.maxQueuedBytes).toBeLessThan(queueBytes + (1 << 20));
    expect(r.statements).toBeGreaterThanOrEqual(ROWS / 5_000);
    expect(peakHeap - base.heapUsed).toBeLessThan(256 * 2 ** 20);
    expect(peakRss).toBeLessThan(1024 * 2 ** 20);
    expect([...seen].filter((n) => n !== 0 && n !== ROWS)).toEqual([]);
    expect(seen.has(0)).toBe(true);
    const digest = `SELECT md5(string_agg(t::text, ',' ORDER BY id)) AS h FROM app.big t`;
    const [[a], [b]] = await Promise.all([pair.source.sql<{ h: string }>(digest), pair.destination.sql<{ h: string }>(digest)]);
    expect(b.h).toBe(a.h);
  });
});
