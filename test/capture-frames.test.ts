// The replication connection's framer: CopyData bodies and the other messages
// come out whole and in order however the socket splits the bytes.
import { describe, expect, it } from 'vitest';
import { MessageFramer } from '../lib/capture/frames';

const message = (type: string, body: Buffer): Buffer => {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
};

/** What the framer reports: `d:<body>` per CopyData, `o:<bytes>` per run of other messages (hex). */
function framed(chunks: Buffer[]): string[] {
  const out: string[] = [];
  const f = new MessageFramer(
    (buf, start, end) => out.push(`d:${buf.subarray(start, end).toString('hex')}`),
    (msgs) => out.push(`o:${msgs.toString('hex')}`),
  );
  for (const c of chunks) f.feed(c);
  return out;
}

/** The order of CopyData and other messages (runs of other messages as one). */
const order = (out: string[]) =>
  out
    .map((x) => x[0])
    .join('')
    .replace(/o+/g, 'o');

describe('MessageFramer', () => {
  const big = Buffer.alloc(70_000, 7);
  const stream = [
    message('W', Buffer.from([0, 0, 0])), // CopyBothResponse
    message('d', Buffer.from('w-first')),
    message('d', Buffer.alloc(0)),
    message('d', big),
    message('C', Buffer.from('COPY 0\0')),
    message('Z', Buffer.from('I')),
    message('d', Buffer.from('k-last')),
  ];
  const bytes = Buffer.concat(stream);
  const whole = framed([bytes]);

  it('hands on CopyData bodies and runs of other messages, in order', () => {
    expect(whole).toEqual([
      `o:${stream[0].toString('hex')}`,
      `d:${Buffer.from('w-first').toString('hex')}`,
      'd:',
      `d:${big.toString('hex')}`,
      `o:${Buffer.concat([stream[4], stream[5]]).toString('hex')}`,
      `d:${Buffer.from('k-last').toString('hex')}`,
    ]);
  });

  it('gives the same messages however the bytes are split', () => {
    // Every split point in the small messages and around the big one's header and end.
    const points = [...Array(60).keys(), 100, 1000, 69_999, 70_000, 70_030, bytes.length - 3];
    for (const at of points) {
      const out = framed([bytes.subarray(0, at), bytes.subarray(at)]);
      expect(order(out)).toBe(order(whole));
      // Other messages may come in more runs when split; joined per position they are the same bytes.
      expect(out.filter((x) => x.startsWith('d:'))).toEqual(whole.filter((x) => x.startsWith('d:')));
      expect(
        out
          .filter((x) => x.startsWith('o:'))
          .join('')
          .replace(/o:/g, ''),
      ).toBe(
        whole
          .filter((x) => x.startsWith('o:'))
          .join('')
          .replace(/o:/g, ''),
      );
    }
    // One byte at a time.
    const bytewise = framed([...bytes].map((b) => Buffer.from([b])));
    expect(bytewise.filter((x) => x.startsWith('d:'))).toEqual(whole.filter((x) => x.startsWith('d:')));
  });
});
