// An order-independent fingerprint of the rows of a COPY … TO STDOUT stream,
// taken from the framed CopyData messages the relay forwards (lib/io/copy-relay.ts):
// PostgreSQL sends one CopyData message per row, so each message payload is
// one row as COPY renders it. The fingerprint is the row count plus, for two
// 32-bit hashes of each row's bytes (of two hash families), their sum mod 2^32: adding is
// commutative, so the same rows in any physical order give the same value,
// and the fingerprints of disjoint ranges add up to the fingerprint of their
// union. One changed byte changes both hashes of its row: two equal
// fingerprints of different row sets need a collision of both sums (about
// 2^-64 for any given change).
//
// Binary COPY adds a file header (11-byte signature, flags, header extension)
// in front of the first row's message and a trailer message (int16 -1) at the
// end: the header is skipped and the trailer is not a row, so a range read in
// another order, by another server or in another query, fingerprints alike.
// Text COPY has neither. The same code reads the source during the copy and
// the destination during verification: one rule on both sides.

/** The format a fingerprint was taken in: fingerprints of different formats never compare equal. */
export type CopyFormat = 'binary' | 'text';

export interface CopyFingerprint {
  format: CopyFormat;
  rows: number;
  /** Sums mod 2^32 of each row's two hashes. */
  a: number;
  b: number;
}

/** Version tag of the hashing rule: a fingerprint stored by another rule is not comparable (verification falls back). */
const VERSION = 'fp2';

/** The stored form: `fp2 binary <rows> <a> <b>`. */
export const fingerprintText = (f: CopyFingerprint) => `${VERSION} ${f.format} ${f.rows} ${f.a} ${f.b}`;

/** Parsed stored form, or null when absent or written by another hashing rule. */
export function parseFingerprint(s: string | null | undefined): CopyFingerprint | null {
  const m = s ? /^fp2 (binary|text) (\d+) (\d+) (\d+)$/.exec(s) : null;
  return m ? { format: m[1] as CopyFormat, rows: Number(m[2]), a: Number(m[3]), b: Number(m[4]) } : null;
}

/** The fingerprint of the union of disjoint row sets (fingerprints of one format): counts and sums add up. */
export function addFingerprints(fps: CopyFingerprint[]): CopyFingerprint {
  return fps.reduce((t, f) => ({ format: t.format, rows: t.rows + f.rows, a: (t.a + f.a) >>> 0, b: (t.b + f.b) >>> 0 }));
}

export const sameFingerprint = (x: CopyFingerprint, y: CopyFingerprint) => x.format === y.format && x.rows === y.rows && x.a === y.a && x.b === y.b;

const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;
const P5 = 0x165667b1 | 0;
const Q1 = 0xcc9e2d51 | 0;
const Q2 = 0x1b873593 | 0;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
/**
 * The two families' rounds: xxHash32's, and one of murmur3's shape. Each is
 * bijective in the word for any chain value and in the chain value for any
 * word (odd multipliers, xor, add, rotate), so a changed word always changes
 * the chain it enters, and the chain stays changed through the rounds after.
 */
const roundA = (chain: number, word: number) => rotlMul((chain + Math.imul(word, P2)) | 0, 13, P1);
const roundB = (chain: number, word: number) => rotlMul(chain ^ Math.imul(word, Q1), 17, Q2);
const rotlMul = (x: number, r: number, m: number) => Math.imul(rotl(x, r), m);

/** Avalanche finalisers (murmur3's and xxHash32's): every input bit reaches every output bit. */
function fmixA(h: number): number {
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  return (h ^ (h >>> 16)) >>> 0;
}
function fmixB(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Two 32-bit hashes of view[start, end) (buf: the same bytes, for the last
 * 0-3 of them). Every little-endian 32-bit word of the row enters one chain
 * of each of two hash families, the even words chains A1 and B1, the odd
 * ones A2 and B2, 8 bytes per step: four chains that do not wait on each
 * other, which is what makes this about twice as fast as the one chain per
 * hash it replaced, with the same cover (each hash reads every byte). A
 * last word goes to A2 and B2, the last bytes to A1 and B1, the row length
 * seeds every chain. Each hash joins its family's two chains and mixes them:
 * a row that differs in one chain of a family always changes that family's
 * hash; otherwise each hash collides about once in 2^32, and both together
 * (different families, different mixes) about once in 2^64.
 */
function addRow(fp: CopyFingerprint, view: DataView, buf: Uint8Array, start: number, end: number): void {
  const len = end - start;
  let a1 = len ^ P1;
  let a2 = (len + P5) | 0;
  let b1 = ~len;
  let b2 = (len + P3) | 0;
  let i = start;
  for (const stop = end - 7; i < stop; i += 8) {
    const w0 = view.getInt32(i, true);
    const w1 = view.getInt32(i + 4, true);
    a1 = roundA(a1, w0);
    a2 = roundA(a2, w1);
    b1 = roundB(b1, w0);
    b2 = roundB(b2, w1);
  }
  if (i + 4 <= end) {
    const w = view.getInt32(i, true) ^ P3;
    a2 = roundA(a2, w);
    b2 = roundB(b2, w);
    i += 4;
  }
  for (; i < end; i++) {
    a1 = roundA(a1, buf[i] ^ P5);
    b1 = roundB(b1, buf[i] ^ P5);
  }
  fp.rows++;
  fp.a = (fp.a + fmixA((a1 + rotl(a2, 7)) | 0)) >>> 0;
  fp.b = (fp.b + fmixB(b1 ^ rotl(b2, 13) ^ len)) >>> 0;
}

const viewOf = (b: Buffer) => new DataView(b.buffer, b.byteOffset, b.length);

const COPY_DATA = 0x64; // 'd'
const HEADER = 5; // type byte + int32 length
/** PGCOPY\n\377\r\n\0, then int32 flags and int32 header-extension length. */
const BINARY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const BINARY_HEADER = BINARY_SIGNATURE.length + 8;

/**
 * Fingerprints a framed CopyData stream fed in pieces of any size (a message
 * may span pieces: it is gathered before it is hashed; most rows arrive whole
 * and are hashed in place). Only CopyData messages are expected (the relay
 * forwards nothing else).
 */
export class CopyStreamFingerprint {
  readonly fp: CopyFingerprint;
  private header = Buffer.alloc(HEADER);
  private headerHave = 0;
  /** The message being gathered (split across pieces), and how much of it is here. */
  private partial: Buffer | null = null;
  private partialHave = 0;
  private first = true;
  /** Why the stream cannot be fingerprinted (not what the relay forwards): no fingerprint then, never a wrong one. */
  private unreadable: string | null = null;

  constructor(format: CopyFormat) {
    this.fp = { format, rows: 0, a: 0, b: 0 };
  }

  feed(buf: Buffer): void {
    if (this.unreadable) return;
    const view = viewOf(buf);
    let i = 0;
    const n = buf.length;
    while (i < n) {
      if (this.partial) {
        const k = Math.min(this.partial.length - this.partialHave, n - i);
        buf.copy(this.partial, this.partialHave, i, i + k);
        this.partialHave += k;
        i += k;
        if (this.partialHave === this.partial.length) {
          const p = this.partial;
          this.partial = null;
          this.payload(viewOf(p), p, 0, p.length);
        }
        continue;
      }
      let len: number;
      if (this.headerHave > 0 || n - i < HEADER) {
        const k = Math.min(HEADER - this.headerHave, n - i);
        buf.copy(this.header, this.headerHave, i, i + k);
        this.headerHave += k;
        i += k;
        if (this.headerHave < HEADER) continue;
        this.headerHave = 0;
        if (!this.isCopyData(this.header[0])) return;
        len = this.header.readUInt32BE(1) - 4;
      } else {
        if (!this.isCopyData(buf[i])) return;
        len = buf.readUInt32BE(i + 1) - 4;
        i += HEADER;
      }
      if (n - i >= len) {
        this.payload(view, buf, i, i + len);
        i += len;
      } else {
        this.partial = Buffer.allocUnsafe(len);
        this.partialHave = 0;
      }
    }
  }

  /** The fingerprint once the whole stream was fed; null when it could not be read as one row per CopyData message. */
  result(): CopyFingerprint | null {
    if (this.partial || this.headerHave) this.unreadable ??= 'the stream ended inside a message';
    return this.unreadable ? null : { ...this.fp };
  }

  /** Why result() is null (for a log line). */
  get problem(): string | null {
    return this.unreadable;
  }

  private isCopyData(code: number): boolean {
    if (code !== COPY_DATA) this.unreadable = `message type 0x${code.toString(16)} in a CopyData stream`;
    return !this.unreadable;
  }

  private payload(view: DataView, buf: Buffer, start: number, end: number) {
    if (this.fp.format === 'binary') {
      if (this.first) {
        // The file header rides on the first message; it is the same on every server: not part of a row.
        if (end - start < BINARY_HEADER || !buf.subarray(start, start + BINARY_SIGNATURE.length).equals(BINARY_SIGNATURE)) {
          this.unreadable = 'a binary stream without its file header';
          return;
        }
        start += BINARY_HEADER + buf.readUInt32BE(start + BINARY_SIGNATURE.length + 4);
        this.first = false;
        if (start === end) return; // a header sent on its own
      }
      // The trailer (field count -1) ends the data: not a row.
      if (end - start === 2 && buf[start] === 0xff && buf[start + 1] === 0xff) return;
    }
    addRow(this.fp, view, buf, start, end);
  }
}
