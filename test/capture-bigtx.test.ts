// A source transaction far larger than any buffer: one million rows stream
// through the apply in pieces (the stream pauses the socket when its queue is
// full), land in ONE destination transaction, and the apply's process — run
// alone in a child process, as a worker runs it, with the default tuning —
// peaks under 512 MB of RSS (VmHWM, read by the process itself at the end and
// sampled by the test from /proc/<pid>/status while it runs).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareSource } from '../activities/capture/prepare-source';
import type { ApplyResult } from '../activities/capture/apply';
import { capturePair } from './harness/capture';
import { sourceInsertLsn } from './harness/capture-compare';

const ROWS = 1_000_000;
const MB = 2 ** 20;

/** applyChanges until `stopAtLsn` in a child process; its result and peak RSS (bytes), also sampled from outside. */
function applyInChild(input: object): Promise<{ result: ApplyResult & { peakRssKb: number }; sampledPeak: number }> {
  const child = spawn(process.execPath, ['-r', require.resolve('tsx/cjs'), path.join(__dirname, 'harness', 'apply-process.ts')], {
    env: { ...process.env, PGSHIFT_APPLY_INPUT: JSON.stringify(input) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err = (err + d).slice(-10_000)));
  let sampledPeak = 0;
  const sampler = setInterval(() => {
    try {
      const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
      sampledPeak = Math.max(sampledPeak, rss);
    } catch {
      // exited
    }
  }, 50);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      clearInterval(sampler);
      if (code !== 0) return reject(new Error(`apply process exited ${code}: ${err}`));
      resolve({ result: JSON.parse(out.trim().split('\n').at(-1)!), sampledPeak });
    });
  });
}

describe('a large source transaction', () => {
  it(`applies a ${ROWS.toLocaleString('en')}-row transaction as one destination transaction, the apply's process under 512 MB RSS`, async () => {
    const pair = await capturePair();
    const ddl = 'CREATE SCHEMA app; CREATE TABLE app.big (id bigint PRIMARY KEY, payload text NOT NULL, n int NOT NULL)';
    await pair.sourceAsRole(ddl);
    await pair.destinationAsRole(ddl);
    const config = pair.config({ objects: { schemas: ['app'] } });
    await prepareSource({ config, runToken: pair.runToken });
    await pair.source.sql(`INSERT INTO app.big SELECT g, repeat(md5(g::text), 5), g % 1000 FROM generate_series(1, ${ROWS}) g`);
    const target = await sourceInsertLsn(pair.source);

    // The destination shows none of the rows, then all of them: one destination transaction.
    const seen = new Set<number>();
    let watching = true;
    const watcher = (async () => {
      const c = await pair.destination.cluster.connect(pair.destination.database);
      try {
        while (watching) {
          seen.add((await c.query<{ n: number }>('SELECT count(*)::int AS n FROM app.big')).rows[0].n);
          await new Promise((r) => setTimeout(r, 200));
        }
      } finally {
        await c.end();
      }
    })();
    const t0 = Date.now();
    let run;
    try {
      run = await applyInChild({ config, runToken: pair.runToken, stopAtLsn: target });
    } finally {
      watching = false;
      await watcher;
    }
    const { result: r, sampledPeak } = run;
    const ms = Date.now() - t0;
    // The higher of the two (the sampler may catch the last moments, after the process read its VmHWM).
    const peak = Math.max(r.peakRssKb * 1024, sampledPeak);
    console.log(
      `${ROWS} rows in one transaction applied in ${ms} ms (${Math.round(ROWS / (ms / 1000))} rows/s, process start included); ` +
        `apply process peak RSS ${Math.round(peak / MB)} MB (VmHWM ${Math.round(r.peakRssKb / 1024)} MB, sampled ${Math.round(sampledPeak / MB)} MB); ${r.statements} statements; stream ${JSON.stringify(r.stream)}`,
    );
    expect(r.changes).toBe(ROWS);
    // The socket was paused: the transaction was never held whole (it is ~420 MB of pgoutput).
    expect(r.stream.pauses).toBeGreaterThan(0);
    expect(r.statements).toBeGreaterThanOrEqual(ROWS / 5_000);
    expect(r.peakRssKb).toBeGreaterThan(0);
    expect(peak).toBeLessThan(512 * MB);
    expect([...seen].filter((n) => n !== 0 && n !== ROWS)).toEqual([]);
    expect(seen.has(0)).toBe(true);
    // Content equality: count and an order-independent sum of row hashes.
    const digest = `SELECT count(*)::text AS n, sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint)::text AS h FROM app.big t`;
    const [[a], [b]] = await Promise.all([pair.source.sql<{ n: string; h: string }>(digest), pair.destination.sql<{ n: string; h: string }>(digest)]);
    expect(a.n).toBe(String(ROWS));
    expect(b).toEqual(a);
  });
});
