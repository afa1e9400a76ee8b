// Row counting of real COPY output, fed in every possible piece size.
import { describe, expect, it } from 'vitest';
import { to as copyTo } from 'pg-copy-streams';
import { BinaryRowCounter, TextRowCounter } from '../lib/copy-rows';
import { RateLimiter } from '../lib/throttle';
import { clusters } from './harness/env';

async function copyOut(sql: string): Promise<Buffer> {
  const c = await clusters().pg15.connect();
  try {
    const parts: Buffer[] = [];
    const s = c.query(copyTo(sql));
    for await (const p of s) parts.push(p as Buffer);
    return Buffer.concat(parts);
  } finally {
    await c.end();
  }
}

const ROWS = `SELECT g AS id, CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('x', g % 50) || E'\\nline' END AS t,
  g::numeric / 7 AS n, ARRAY[g, NULL] AS a, '' AS empty FROM generate_series(1, 1000) g`;

describe('COPY row counters', () => {
  it('count binary tuples across arbitrary chunk boundaries', async () => {
    const data = await copyOut(`COPY (${ROWS}) TO STDOUT (FORMAT binary)`);
    for (const size of [1, 2, 3, 7, 64, 4096, data.length]) {
      const c = new BinaryRowCounter();
      let n = 0;
      for (let i = 0; i < data.length; i += size) n += c.push(data.subarray(i, i + size));
      expect(n, `piece size ${size}`).toBe(1000);
    }
    const empty = await copyOut(`COPY (SELECT 1 WHERE false) TO STDOUT (FORMAT binary)`);
    expect(new BinaryRowCounter().push(empty)).toBe(0);
    const zeroCols = await copyOut(`COPY (SELECT FROM generate_series(1, 5)) TO STDOUT (FORMAT binary)`);
    expect(new BinaryRowCounter().push(zeroCols)).toBe(5);
  });

  it('count text rows with embedded newlines escaped', async () => {
    const data = await copyOut(`COPY (${ROWS}) TO STDOUT`);
    const c = new TextRowCounter();
    let n = 0;
    for (let i = 0; i < data.length; i += 13) n += c.push(data.subarray(i, i + 13));
    expect(n).toBe(1000);
  });
});

describe('RateLimiter', () => {
  it('paces takes to the configured rows/s and bytes/s on a virtual clock', async () => {
    let now = 0;
    const limiter = new RateLimiter({ rowsPerSecond: 1000, bytesPerSecond: null }, 100, () => now, async (ms) => {
      now += ms;
    });
    for (let i = 0; i < 100; i++) await limiter.take(100, 10);
    expect(now).toBeGreaterThanOrEqual(9_800);
    expect(now).toBeLessThanOrEqual(10_000);
    limiter.setRates({ rowsPerSecond: null, bytesPerSecond: 1_000_000 });
    const t0 = now;
    for (let i = 0; i < 10; i++) await limiter.take(1, 500_000);
    expect(now - t0).toBeGreaterThanOrEqual(4_800);
    expect(now - t0).toBeLessThanOrEqual(5_000);
    limiter.setRates({ rowsPerSecond: null, bytesPerSecond: null });
    const t1 = now;
    await limiter.take(1e9, 1e12);
    expect(now).toBe(t1);
  });
});
