// Decoder of the pgoutput logical replication protocol, version 1 (the one
// every PostgreSQL from 10 on speaks). Column values stay exactly the text the
// source's output functions produced: no type parser ever sees them, so
// timestamps keep their microseconds and their era, numerics their digits and
// json its key order and duplicates. An unchanged TOASTed value (`u`) is the
// UNCHANGED marker, never confused with NULL.
//
// Stateless: a tuple is decoded without its relation (the message says how
// many columns it carries), so the caller keeps the relation cache.
import { type Lsn } from './lsn';

/** A column whose TOASTed value did not change: the message does not carry it. */
export const UNCHANGED: unique symbol = Symbol('unchanged TOAST value');
export type Unchanged = typeof UNCHANGED;
export type Datum = string | null | Unchanged;

export interface RelationColumn {
  name: string;
  /** Part of the replica identity. */
  key: boolean;
  typeOid: number;
  typeMod: number;
}

export type PgoutputMessage =
  | { tag: 'begin'; finalLsn: Lsn; commitTime: bigint; xid: number }
  | { tag: 'commit'; commitLsn: Lsn; endLsn: Lsn; commitTime: bigint }
  | { tag: 'origin'; lsn: Lsn; name: string }
  | { tag: 'relation'; relationOid: number; schema: string; name: string; replicaIdentity: string; columns: RelationColumn[] }
  | { tag: 'type'; typeOid: number; schema: string; name: string }
  | { tag: 'insert'; relationOid: number; new: Datum[] }
  /** `old` is the key tuple (K: only identity columns set) or the whole old row (O: replica identity full); null when the key did not change. */
  | { tag: 'update'; relationOid: number; old: Datum[] | null; oldKind: 'K' | 'O' | null; new: Datum[] }
  | { tag: 'delete'; relationOid: number; old: Datum[]; oldKind: 'K' | 'O' }
  | { tag: 'truncate'; relationOids: number[]; cascade: boolean; restartIdentity: boolean }
  | { tag: 'message'; transactional: boolean; lsn: Lsn; prefix: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

class Reader {
  constructor(
    private readonly b: Buffer,
    private p: number,
    private readonly end: number,
  ) {}
  private need(n: number) {
    if (this.p + n > this.end) throw new Error('pgoutput: message ends early');
  }
  u8(): number {
    this.need(1);
    return this.b[this.p++];
  }
  i16(): number {
    this.need(2);
    const v = this.b.readInt16BE(this.p);
    this.p += 2;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.b.readInt32BE(this.p);
    this.p += 4;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.b.readUInt32BE(this.p);
    this.p += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.b.readBigUInt64BE(this.p);
    this.p += 8;
    return v;
  }
  i64(): bigint {
    this.need(8);
    const v = this.b.readBigInt64BE(this.p);
    this.p += 8;
    return v;
  }
  cstring(): string {
    const end = this.b.indexOf(0, this.p);
    if (end < 0 || end >= this.end) throw new Error('pgoutput: unterminated string');
    const s = utf8.decode(this.b.subarray(this.p, end));
    this.p = end + 1;
    return s;
  }
  text(n: number): string {
    this.need(n);
    const { b, p } = this;
    const end = p + n;
    this.p = end;
    // Most values are ASCII: read them straight from the buffer; anything else is checked UTF-8.
    for (let i = p; i < end; i++) if (b[i] > 0x7f) return utf8.decode(b.subarray(p, end));
    return b.toString('latin1', p, end);
  }
  skip(n: number): void {
    this.need(n);
    this.p += n;
  }
  done(): boolean {
    return this.p === this.end;
  }
}

function tuple(r: Reader): Datum[] {
  const n = r.i16();
  const out: Datum[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const kind = r.u8();
    switch (kind) {
      case 0x6e: // n: null
        out[i] = null;
        break;
      case 0x75: // u: unchanged TOASTed value, not sent
        out[i] = UNCHANGED;
        break;
      case 0x74: // t: text
        out[i] = r.text(r.i32());
        break;
      default:
        // b (binary) only exists with the binary option of protocol 2+, never requested.
        throw new Error(`pgoutput: unexpected column kind ${JSON.stringify(String.fromCharCode(kind))}`);
    }
  }
  return out;
}

function expect(r: Reader, ...kinds: string[]): string {
  const k = String.fromCharCode(r.u8());
  if (!kinds.includes(k)) throw new Error(`pgoutput: expected ${kinds.join(' or ')}, got ${JSON.stringify(k)}`);
  return k;
}

/** Decode one pgoutput message (the payload of an XLogData message): `buf` from `offset` to `end`. */
export function decodePgoutput(buf: Buffer, offset = 0, end = buf.length): PgoutputMessage {
  const r = new Reader(buf, offset, end);
  const tag = String.fromCharCode(r.u8());
  let m: PgoutputMessage;
  switch (tag) {
    case 'B':
      m = { tag: 'begin', finalLsn: r.u64(), commitTime: r.i64(), xid: r.u32() };
      break;
    case 'C':
      r.u8(); // flags, unused
      m = { tag: 'commit', commitLsn: r.u64(), endLsn: r.u64(), commitTime: r.i64() };
      break;
    case 'O':
      m = { tag: 'origin', lsn: r.u64(), name: r.cstring() };
      break;
    case 'R': {
      const relationOid = r.u32();
      const schema = r.cstring();
      const name = r.cstring();
      const replicaIdentity = String.fromCharCode(r.u8());
      const n = r.i16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < n; i++) {
        const flags = r.u8();
        columns.push({ key: (flags & 1) === 1, name: r.cstring(), typeOid: r.u32(), typeMod: r.i32() });
      }
      m = { tag: 'relation', relationOid, schema, name, replicaIdentity, columns };
      break;
    }
    case 'Y':
      m = { tag: 'type', typeOid: r.u32(), schema: r.cstring(), name: r.cstring() };
      break;
    case 'I': {
      const relationOid = r.u32();
      expect(r, 'N');
      m = { tag: 'insert', relationOid, new: tuple(r) };
      break;
    }
    case 'U': {
      const relationOid = r.u32();
      const k = expect(r, 'K', 'O', 'N');
      let old: Datum[] | null = null;
      if (k !== 'N') {
        old = tuple(r);
        expect(r, 'N');
      }
      m = { tag: 'update', relationOid, old, oldKind: k === 'N' ? null : (k as 'K' | 'O'), new: tuple(r) };
      break;
    }
    case 'D': {
      const relationOid = r.u32();
      const k = expect(r, 'K', 'O') as 'K' | 'O';
      m = { tag: 'delete', relationOid, old: tuple(r), oldKind: k };
      break;
    }
    case 'T': {
      const n = r.i32();
      const flags = r.u8();
      const relationOids: number[] = [];
      for (let i = 0; i < n; i++) relationOids.push(r.u32());
      m = { tag: 'truncate', relationOids, cascade: (flags & 1) !== 0, restartIdentity: (flags & 2) !== 0 };
      break;
    }
    case 'M': {
      const flags = r.u8();
      const lsn = r.u64();
      const prefix = r.cstring();
      r.skip(r.i32()); // content: not used
      m = { tag: 'message', transactional: (flags & 1) !== 0, lsn, prefix };
      break;
    }
    default:
      throw new Error(`pgoutput: unknown message type ${JSON.stringify(tag)}`);
  }
  if (!r.done()) throw new Error(`pgoutput: trailing bytes after a ${tag} message`);
  return m;
}

/** Approximate memory a tuple holds (for bounding batches). */
export function tupleBytes(t: Datum[] | null): number {
  if (!t) return 0;
  let n = 16 + 8 * t.length;
  for (const d of t) if (typeof d === 'string') n += d.length * 2;
  return n;
}
