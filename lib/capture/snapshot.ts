// Which source transactions a copy chunk's snapshot already saw. Each chunk
// records, with its done mark, the snapshot its COPY read
// (txid_current_snapshot(): xmin, xmax and the transactions in progress, as
// 64-bit txids) and the source's WAL insert position just before and just
// after that snapshot was taken. A row change streamed from the slot whose
// transaction the snapshot saw is already in the copy; for a table without a
// key (nothing to upsert by) the apply must skip it, and apply every other.
//
// The rule is PostgreSQL's own visibility test (XidInMVCCSnapshot) for a
// committed transaction: seen when its txid is below xmin, or below xmax and
// not in progress. pgoutput's Begin carries the 32-bit xid; its epoch is the
// one that puts it nearest the snapshot's xmax. That is exact for every
// transaction the snapshot can have seen: such a transaction committed
// before the snapshot was taken, so its commit record starts before the insert
// position read right after it (`seenBefore`), and a transaction that was
// running while the snapshot was taken is less than 2^31 xids away from it
// (wraparound protection). Transactions committed at or after `seenBefore`
// are never seen — however many xids later, even past a wraparound.
// Pure: no I/O.
import type { Lsn } from './lsn';
import { parseLsn } from './lsn';

export interface ChunkSnapshot {
  xmin: bigint;
  xmax: bigint;
  /** In progress when the snapshot was taken (64-bit txids). */
  inProgress: Set<bigint>;
  /** Every transaction the snapshot saw committed before this WAL position. */
  seenBefore: Lsn;
}

/** txid_snapshot text ("xmin:xmax:xip,xip,…") and the insert position read after it. */
export function parseSnapshot(text: string, seenBefore: string): ChunkSnapshot {
  const m = /^(\d+):(\d+):([\d,]*)$/.exec(text.trim());
  if (!m) throw new Error(`not a txid_snapshot: ${JSON.stringify(text)}`);
  const inProgress = new Set(m[3] ? m[3].split(',').map((x) => BigInt(x)) : []);
  return { xmin: BigInt(m[1]), xmax: BigInt(m[2]), inProgress, seenBefore: parseLsn(seenBefore) };
}

const HALF = 1n << 31n;
const WRAP = 1n << 32n;

/** The 64-bit txid of a 32-bit xid, in the epoch nearest `near`. */
export function widenXid(xid: number, near: bigint): bigint {
  let x = (near & ~(WRAP - 1n)) | BigInt(xid >>> 0);
  if (x >= near + HALF) x -= WRAP;
  else if (x < near - HALF) x += WRAP;
  return x;
}

/** True when the snapshot saw the (committed) source transaction `xid` whose commit record starts at `commitLsn`. */
export function snapshotSaw(s: ChunkSnapshot, xid: number, commitLsn: Lsn): boolean {
  if (commitLsn >= s.seenBefore) return false;
  const x = widenXid(xid, s.xmax);
  return x < s.xmin || (x < s.xmax && !s.inProgress.has(x));
}
