// An order-independent fingerprint of the rows of a COPY … TO STDOUT stream,
// taken from the framed CopyData messages the relay forwards (lib/io/copy-relay.ts):
// PostgreSQL sends one CopyData message per row, so each message payload is
// one row as COPY renders it. The fingerprint is the row count plus, for two
// independent 32-bit hashes of each row's bytes, their sum mod 2^32: adding is
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
const VERSION = 'fp1';

/** The stored form: `fp1 binary <rows> <a> <b>`. */
export const fingerprintText = (f: CopyFingerprint) => `${VERSION} ${f.format} ${f.rows} ${f.a} ${f.b}`;

/** Parsed stored form, or null when absent or written by another hashing rule. */
export function parseFingerprint(s: string | null | undefined): CopyFingerprint | null {
  const m = s ? /^fp1 (binary|text) (\d+) (\d+) (\d+)$/.exec(s) : null;
  return m ? { format: m[1] as CopyFormat, rows: Number(m[2]), a: Number(m[3]), b: Number(m[4]) } : null;
}

export const sameFingerprint = (x: CopyFingerprint, y: CopyFingerprint) => x.format === y.format && x.rows === y.rows && x.a === y.a && x.b === y.b;

const P1 = 0x9e3779b1 | 0;
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;

/** Rows at least this long are hashed from an aligned copy, a word per load (faster once the copy is paid for). */
const WORD_ROWS = 256;
/** Word loads read the platform's byte order: the same words as the byte loads on little-endian machines only. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
let scratch = new Uint8Array(1 << 16);
let words = new Int32Array(scratch.buffer);

/**
 * Two 32-bit hashes of buf[start, end) in one pass over little-endian 32-bit
 * words: murmur3's block mix and an xxHash32-style lane, then the bytes left
 * over, each with its own finaliser. Written out with Math.imul: no
 * allocation per row. Long rows are first copied to an aligned scratch buffer
 * and read a word at a time: the same words, so the same hashes.
 */
function addRow(fp: CopyFingerprint, buf: Buffer, start: number, end: number): void {
  const len = end - start;
  let h1 = len ^ 0x2a;
  let h2 = (len + 0x165667b1) | 0;
  const n = len >> 2;
  let tail: Uint8Array = buf;
  let i = start + n * 4;
  if (LITTLE_ENDIAN && len >= WORD_ROWS) {
    if (len > scratch.length) {
      scratch = new Uint8Array(len + (1 << 16));
      words = new Int32Array(scratch.buffer, 0, scratch.length >> 2);
    }
    buf.copy(scratch, 0, start, end);
    for (let w = 0; w < n; w++) {
      const k = words[w];
      const k1 = Math.imul(k, 0xcc9e2d51);
      h1 ^= Math.imul((k1 << 15) | (k1 >>> 17), 0x1b873593);
      h1 = (Math.imul((h1 << 13) | (h1 >>> 19), 5) + 0xe6546b64) | 0;
      h2 = (h2 + Math.imul(k, P2)) | 0;
      h2 = Math.imul((h2 << 13) | (h2 >>> 19), P1);
    }
    tail = scratch;
    i = n * 4;
    end = len;
  } else {
    for (let j = start; j < i; j += 4) {
      const k = buf[j] | (buf[j + 1] << 8) | (buf[j + 2] << 16) | (buf[j + 3] << 24);
      const k1 = Math.imul(k, 0xcc9e2d51);
      h1 ^= Math.imul((k1 << 15) | (k1 >>> 17), 0x1b873593);
      h1 = (Math.imul((h1 << 13) | (h1 >>> 19), 5) + 0xe6546b64) | 0;
      h2 = (h2 + Math.imul(k, P2)) | 0;
      h2 = Math.imul((h2 << 13) | (h2 >>> 19), P1);
    }
  }
  for (; i < end; i++) {
    h1 = Math.imul(h1 ^ tail[i], 0x01000193);
    h2 = Math.imul(h2 + tail[i], P3);
  }
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  h2 ^= h2 >>> 15;
  h2 = Math.imul(h2, P2);
  h2 ^= h2 >>> 13;
  h2 = Math.imul(h2, P3);
  h2 ^= h2 >>> 16;
  fp.rows++;
  fp.a = (fp.a + (h1 >>> 0)) >>> 0;
  fp.b = (fp.b + (h2 >>> 0)) >>> 0;
}

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
          this.payload(p, 0, p.length);
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
        this.payload(buf, i, i + len);
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

  private payload(buf: Buffer, start: number, end: number) {
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
    addRow(this.fp, buf, start, end);
  }
}
