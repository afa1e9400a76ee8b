// The COPY stream fingerprint (lib/copy-fingerprint.ts) that full data
// verification compares: independent of piece sizes and row order, blind to
// the binary header and trailer, sensitive to any changed byte; and equal for
// the same rows read from two servers of different versions, in both formats.
import { describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { addFingerprints, CopyStreamFingerprint, fingerprintText, parseFingerprint, type CopyFormat } from '../lib/copy-fingerprint';
import { copyOutFramed } from '../lib/io/copy-relay';
import { copyOutTapped, tappableSocket } from '../lib/io/copy-tap';
import { destinationFingerprint, destinationRangeFingerprint } from '../activities/verify-fingerprint';
import { clusters } from './harness/env';

const msg = (payload: Buffer | string) => {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const h = Buffer.alloc(5);
  h.write('d', 0, 'latin1');
  h.writeUInt32BE(p.length + 4, 1);
  return Buffer.concat([h, p]);
};
const BINARY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
const TRAILER = Buffer.from([0xff, 0xff]);

function fingerprint(format: CopyFormat, stream: Buffer, pieceSize = stream.length) {
  const fp = new CopyStreamFingerprint(format);
  for (let i = 0; i < stream.length; i += pieceSize) fp.feed(stream.subarray(i, i + pieceSize));
  return fp.result();
}

const rows = Array.from({ length: 40 }, (_, i) => Buffer.from(`${i}\t${'v'.repeat(i * 13)}\n`));
/** A binary-like stream: header on the first row's message, trailer last. */
const binary = (rs: Buffer[]) => Buffer.concat([msg(Buffer.concat([BINARY_HEADER, rs[0]])), ...rs.slice(1).map(msg), msg(TRAILER)]);

describe('COPY stream fingerprint', () => {
  it('is the same for any piece size and any row order, and counts rows without the binary header and trailer', () => {
    const text = fingerprint('text', Buffer.concat(rows.map(msg)))!;
    expect(text.rows).toBe(40);
    for (const size of [1, 2, 3, 4, 5, 6, 7, 31, 4096]) expect(fingerprint('text', Buffer.concat(rows.map(msg)), size), `piece ${size}`).toEqual(text);
    expect(fingerprint('text', Buffer.concat([...rows].reverse().map(msg)))).toEqual(text);
    const bin = fingerprint('binary', binary(rows))!;
    expect(bin).toEqual({ ...text, format: 'binary' });
    for (const size of [1, 3, 8, 19, 20, 21]) expect(fingerprint('binary', binary([...rows].reverse()), size), `piece ${size}`).toEqual(bin);
    // An empty binary COPY: the header rides on the trailer's message.
    expect(fingerprint('binary', msg(Buffer.concat([BINARY_HEADER, TRAILER])))).toEqual({ format: 'binary', rows: 0, a: 0, b: 0 });
    expect(parseFingerprint(fingerprintText(bin))).toEqual(bin);
    // Disjoint ranges add up to their union, whatever the cut.
    const cut = [5, 17, 33];
    const parts = [0, ...cut].map((from, i) => fingerprint('text', Buffer.concat(rows.slice(from, [...cut, 40][i]).map(msg)))!);
    expect(addFingerprints(parts)).toEqual(text);
    expect(parseFingerprint('fp0 binary 1 2 3')).toBeNull();
  });

  it('keeps its hashing rule: fingerprints stored by a copy are compared by later versions', () => {
    // Rows of whole 8-byte steps, with a last word (300 bytes), with a tail of 3 bytes (1027), of one word and a byte, empty.
    const fixed = [
      Buffer.from('a'.repeat(300)),
      Buffer.from('pgshift\n'),
      Buffer.from(Array.from({ length: 1027 }, (_, i) => (i * 37) & 255)),
      Buffer.alloc(0),
      Buffer.from('xyz'),
      Buffer.from('pgsh!'),
    ];
    expect(fingerprint('text', Buffer.concat(fixed.map(msg)))).toEqual({ format: 'text', rows: 6, a: 912814167, b: 4293312780 });
  });

  it('changes with any single changed, missing or duplicated row byte', () => {
    const base = fingerprint('text', Buffer.concat(rows.map(msg)))!;
    const long = rows[39];
    for (let i = 0; i < long.length; i++) {
      const changed = Buffer.from(long);
      changed[i] ^= 1;
      const fp = fingerprint('text', Buffer.concat([...rows.slice(0, 39), changed].map(msg)))!;
      expect(fp.a === base.a || fp.b === base.b, `byte ${i}`).toBe(false);
    }
    // Words swapped inside a row (the same chain, 8 bytes apart; neighbouring chains, 4 bytes apart): the order of a row's bytes counts.
    const varied = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    const withVaried = fingerprint('text', Buffer.concat([...rows.slice(0, 39), varied].map(msg)))!;
    for (const gap of [4, 8]) {
      const swapped = Buffer.from(varied);
      varied.copy(swapped, 16, 16 + gap, 20 + gap);
      varied.copy(swapped, 16 + gap, 16, 20);
      const fp = fingerprint('text', Buffer.concat([...rows.slice(0, 39), swapped].map(msg)))!;
      expect(fp.a === withVaried.a || fp.b === withVaried.b, `words swapped ${gap} bytes apart`).toBe(false);
    }
    expect(fingerprint('text', Buffer.concat(rows.slice(1).map(msg)))).not.toEqual(base);
    const dup = fingerprint('text', Buffer.concat([...rows.slice(0, 39), rows[0]].map(msg)))!;
    expect(dup.rows).toBe(40);
    expect([dup.a, dup.b]).not.toEqual([base.a, base.b]);
  });

  it('gives no fingerprint for what is not a CopyData stream', () => {
    const fp = new CopyStreamFingerprint('text');
    fp.feed(Buffer.concat([msg('row\n'), Buffer.from('C\0\0\0\x05x')]));
    expect(fp.result()).toBeNull();
    expect(fingerprint('binary', msg('no header'))).toBeNull();
    expect(fingerprint('text', msg('cut short').subarray(0, 8))).toBeNull();
  });

  for (const format of ['binary', 'text'] as const) {
    it(`is the same for the same rows read from PostgreSQL 15 and 18 (${format}), whatever their physical order`, async () => {
      const table = `fp_${format}`;
      const read = async (c: Client, sql: string) => {
        const fp = new CopyStreamFingerprint(format);
        for await (const b of c.query(copyOutFramed(`COPY (${sql}) TO STDOUT ${format === 'binary' ? '(FORMAT binary)' : ''}`)) as AsyncIterable<Buffer>)
          fp.feed(b);
        return fp.result();
      };
      const [a, b] = await Promise.all([clusters().pg15.connect(), clusters().pg18.connect()]);
      try {
        const ddl = `DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int, t text, n numeric, f float8, j jsonb, ts timestamptz, big text)`;
        const fill = (order: string) => `INSERT INTO ${table} SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE repeat('x', g % 50) || E'\\nline' END,
          g::numeric / 7, CASE WHEN g = 5 THEN '-0' ELSE g / 3.0 END, jsonb_build_object('g', g, 'a', ARRAY[g]), '2024-01-01+00'::timestamptz + g * interval '1 s',
          repeat(md5(g::text), g % 400) FROM generate_series(1, 5000) g ORDER BY g ${order}`;
        await Promise.all([a.query(`${ddl}; ${fill('ASC')}`), b.query(`${ddl}; ${fill('DESC')}`)]);
        const q = `SELECT id, t, n, f, j, ts, big FROM ONLY ${table} WHERE id >= 10`;
        const [fa, fb] = await Promise.all([read(a, q), read(b, q)]);
        expect(fa!.rows).toBe(4991);
        expect(fb).toEqual(fa);
        // Read straight off a tapped session's socket (the verification's destination read): the same fingerprint,
        // and the session works on afterwards, an error included.
        const h = clusters().pg18;
        const tapped = new Client({ host: h.host, port: h.port, user: 'postgres', password: h.password, stream: () => tappableSocket() });
        await tapped.connect();
        try {
          const fp = new CopyStreamFingerprint(format);
          const sql = `COPY (${q}) TO STDOUT ${format === 'binary' ? '(FORMAT binary)' : ''}`;
          expect(await copyOutTapped(tapped, sql, (piece) => fp.feed(piece))).toBe(true);
          expect(fp.result()).toEqual(fa);
          // The verification's read, tapped and (a plain session, as over TLS) through the stream: the same.
          const range = { table, columns: ['id', 't', 'n', 'f', 'j', 'ts', 'big'], where: 'id >= 10', binary: format === 'binary' };
          expect(await destinationFingerprint(tapped, range)).toEqual(fa);
          expect(await destinationFingerprint(b, range)).toEqual(fa);
          await expect(copyOutTapped(tapped, 'COPY no_such_table TO STDOUT', () => undefined)).rejects.toThrow(/no_such_table/);
          expect((await tapped.query('SELECT 42 AS x')).rows).toEqual([{ x: 42 }]);
        } finally {
          await tapped.end();
        }
        // A plain session cannot be tapped: the caller reads the COPY as a stream.
        expect(await copyOutTapped(b, `COPY (${q}) TO STDOUT`, () => undefined)).toBe(false);
        // One value changed on one side (-0 became 0): a different fingerprint.
        await b.query(`UPDATE ${table} SET f = 0 WHERE id = 5; UPDATE ${table} SET n = 1.50 WHERE id = 10`);
        expect(await read(b, q)).not.toEqual(fa);
      } finally {
        await Promise.all([a.end(), b.end()]);
      }
    });
  }

  it('reads a large whole table as two halves of its pages on two sessions (PostgreSQL 14+): the same fingerprint, a missing or changed row found', async () => {
    const table = 'fp_split';
    const columns = ['id', 'v'];
    const cs = clusters();
    for (const [name, h] of [
      ['pg18', cs.pg18],
      ['pg11', cs.pg11],
    ] as const) {
      const [c, other] = await Promise.all([h.connect(), h.connect()]);
      try {
        await c.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int, v text);
          INSERT INTO ${table} SELECT g, repeat(md5(g::text), 1 + g % 20) FROM generate_series(1, 20000) g; ANALYZE ${table}`);
        const whole = { table, columns, where: 'true', binary: true };
        const single = await destinationFingerprint(c, whole);
        expect(single!.rows).toBe(20000);
        let sessions = 0;
        const another = <T>(fn: (x: Client) => Promise<T>) => (sessions++, fn(other));
        expect(await destinationRangeFingerprint(c, whole, another, undefined, 1)).toEqual(single);
        // PostgreSQL 11 has no TID range scan: one session reads it whole.
        expect(sessions, name).toBe(name === 'pg11' ? 0 : 1);
        // A range of the table (a chunk) is read by one session, as is a table below the size.
        expect(await destinationRangeFingerprint(c, { ...whole, where: 'id > 0' }, another, undefined, 1)).toEqual(single);
        expect(await destinationRangeFingerprint(c, whole, another)).toEqual(single);
        expect(sessions, name).toBe(name === 'pg11' ? 0 : 1);
        // A row missing from the first half (its page stays there), then one changed byte (the new row version lands at
        // the end, in the second half): both found; put back, the same again.
        await c.query(`CREATE TEMP TABLE saved AS SELECT * FROM ${table} WHERE id = 1; DELETE FROM ${table} WHERE id = 1`);
        expect(await destinationRangeFingerprint(c, whole, another, undefined, 1), 'row 1 missing').not.toEqual(single);
        await c.query(`INSERT INTO ${table} SELECT * FROM saved; UPDATE ${table} SET v = v || 'x' WHERE id = 20000`);
        expect(await destinationRangeFingerprint(c, whole, another, undefined, 1), 'row 20000 changed').not.toEqual(single);
        await c.query(`UPDATE ${table} SET v = left(v, -1) WHERE id = 20000`);
        expect(await destinationRangeFingerprint(c, whole, another, undefined, 1)).toEqual(single);
      } finally {
        await Promise.all([c.end(), other.end()]);
      }
    }
  });
});
