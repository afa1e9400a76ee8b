// The COPY relay (lib/io/copy-relay.ts): CopyData messages pass from source to
// destination with their framing; the worker only walks message headers.
// Fed in every piece size, against real servers, and with a failing source.
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { copyInFramed, copyOutFramed } from '../lib/io/copy-relay';
import { RateLimiter } from '../lib/throttle';
import { clusters } from './harness/env';

const msg = (type: string, payload: Buffer | string) => {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeUInt32BE(p.length + 4, 1);
  return Buffer.concat([h, p]);
};

/** Drive the parser directly, with pg's side stubbed: what it forwards, and what it hands back to pg. */
function feed(pieces: Buffer[]) {
  const s = copyOutFramed('COPY t TO STDOUT') as unknown as Record<string, unknown> & { messages: number; payloadBytes: number };
  const forwarded: Buffer[] = [];
  const handedBack: Buffer[] = [];
  let ended = false;
  s.push = (b: Buffer | null) => {
    if (b === null) ended = true;
    else forwarded.push(Buffer.from(b));
    return true;
  };
  s._buffer = { push: (b: Buffer) => handedBack.push(Buffer.from(b)) };
  s._detach = () => undefined;
  s._cleanup = () => undefined;
  const parse = s._parse as (b: Buffer) => unknown;
  for (const p of pieces) if (!ended) parse.call(s, p);
  return { forwarded: Buffer.concat(forwarded), handedBack: Buffer.concat(handedBack), ended, messages: s.messages, payloadBytes: s.payloadBytes };
}

describe('COPY relay', () => {
  it('forwards exactly the CopyData messages, framing included, whatever the read sizes', () => {
    const rows = Array.from({ length: 50 }, (_, i) => msg('d', 'x'.repeat(i * 7) + '\n'));
    const stream = Buffer.concat([
      msg('H', Buffer.from([0, 0, 1, 0, 0])),
      ...rows.slice(0, 20),
      msg('N', 'a notice in the middle'),
      ...rows.slice(20),
      msg('c', ''),
      msg('C', 'COPY 50\0'),
      msg('Z', 'I'),
    ]);
    const tail = Buffer.concat([msg('C', 'COPY 50\0'), msg('Z', 'I')]);
    for (const size of [1, 2, 3, 4, 5, 6, 7, 13, 64, 4096, stream.length]) {
      const pieces: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) pieces.push(stream.subarray(i, i + size));
      const r = feed(pieces);
      expect(r.forwarded.equals(Buffer.concat(rows)), `piece size ${size}`).toBe(true);
      expect(r.ended).toBe(true);
      expect(r.messages).toBe(50);
      expect(r.payloadBytes).toBe(rows.reduce((a, b) => a + b.length - 5, 0));
      // What follows CopyDone in the last piece read goes back to pg, from its first byte (pg reads the rest itself).
      const copyDoneEnd = stream.length - tail.length;
      expect(r.handedBack.length).toBe(Math.min(stream.length, Math.ceil(copyDoneEnd / size) * size) - copyDoneEnd);
      expect(tail.subarray(0, r.handedBack.length).equals(r.handedBack), `piece size ${size}`).toBe(true);
    }
  });

  it('hands an error back to pg at once', () => {
    const r = feed([Buffer.concat([msg('H', Buffer.from([0, 0, 0])), msg('d', 'row'), msg('E', 'SERROR\0')])]);
    expect(r.forwarded.equals(msg('d', 'row'))).toBe(true);
    expect(r.handedBack.equals(msg('E', 'SERROR\0'))).toBe(true);
  });

  for (const format of ['binary', 'text']) {
    it(`copies real rows between servers exactly (${format}), leaving both sessions usable`, async () => {
      const src = await clusters().pg15.connect();
      const dst = await clusters().pg15b.connect();
      const table = `relay_${format}`;
      const rows = `SELECT g AS id, CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('x', g % 50) || E'\\nline' END AS t,
        g::numeric / 7 AS n, ARRAY[g, NULL] AS a, repeat(md5(g::text), g % 400) AS big FROM generate_series(1, 20000) g`;
      try {
        await dst.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int, t text, n numeric, a int[], big text)`);
        const fmt = format === 'binary' ? '(FORMAT binary)' : '';
        const out = src.query(copyOutFramed(`COPY (${rows}) TO STDOUT ${fmt}`));
        const sink = dst.query(copyInFramed(`COPY ${table} FROM STDIN ${fmt}`));
        await pipeline(out, sink);
        expect(sink.rowCount).toBe(20000);
        expect(out.messages).toBe(format === 'binary' ? 20001 : 20000); // binary: the trailer
        const digest = "SELECT md5(string_agg(r::text, ',' ORDER BY id)) AS d FROM (%s) r";
        const [a, b] = [(await src.query(digest.replace('%s', rows))).rows[0].d, (await dst.query(digest.replace('%s', `SELECT * FROM ${table}`))).rows[0].d];
        expect(b).toBe(a);
        expect((await src.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
        expect((await dst.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
      } finally {
        await Promise.all([src.end(), dst.end()]);
      }
    });
  }

  it('fails with the server message when the source query fails mid-stream; the destination loads nothing', async () => {
    const src = await clusters().pg15.connect();
    const dst = await clusters().pg15b.connect();
    try {
      await dst.query('DROP TABLE IF EXISTS relay_fail; CREATE TABLE relay_fail (v int)');
      const out = src.query(copyOutFramed('COPY (SELECT 1 / (g - 5000) FROM generate_series(1, 10000) g) TO STDOUT (FORMAT binary)'));
      const sink = dst.query(copyInFramed('COPY relay_fail FROM STDIN (FORMAT binary)'));
      await expect(pipeline(out, sink)).rejects.toThrow(/division by zero/);
      expect((await dst.query('SELECT count(*)::int AS n FROM relay_fail')).rows).toEqual([{ n: 0 }]);
      expect((await src.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await Promise.all([src.end(), dst.end()]);
    }
  });
});

describe('RateLimiter', () => {
  it('paces takes to the configured rows/s and bytes/s on a virtual clock', async () => {
    let now = 0;
    const limiter = new RateLimiter(
      { rowsPerSecond: 1000, bytesPerSecond: null },
      100,
      () => now,
      async (ms) => {
        now += ms;
      },
    );
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
