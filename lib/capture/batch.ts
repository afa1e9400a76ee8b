// Collapsing a run of row changes of one table into the final state of each
// key, so a batch is applied with a few set-based statements instead of one
// statement per change. The final state is what applying the changes one by
// one in commit order would leave:
//  - an image (upsert of the row), or
//  - a delete of the key.
// An image may be partial: a column the source did not send because its
// TOASTed value did not change (UNCHANGED) keeps the value of the row as it
// was before the batch, at `origin` — the row's own key, or its old key when
// an update changed the key (the value then moves with the row).
// Pure: no I/O.
import { type Datum, UNCHANGED } from './pgoutput';

export type Key = string[];

export type RowChange =
  | { op: 'insert'; values: Datum[] }
  /** oldKey only when the update changed the key. */
  | { op: 'update'; oldKey: Key | null; values: Datum[] }
  | { op: 'delete'; oldKey: Key };

export type FinalState =
  | { kind: 'delete'; key: Key }
  /** origin: where UNCHANGED columns come from (pre-batch row); null when the image is complete. */
  | { kind: 'image'; key: Key; values: Datum[]; origin: Key | null };

type Image = Extract<FinalState, { kind: 'image' }>;

/** A key as one string: the value itself for a one-column key (a table's keys all have the same arity). */
export const keyString = (k: Key): string => (k.length === 1 ? k[0] : JSON.stringify(k));
export const isPartial = (values: Datum[]): boolean => values.includes(UNCHANGED);

export function keyOf(values: Datum[], keyIdx: number[], what: string): Key {
  return keyIdx.map((i) => {
    const v = values[i];
    if (typeof v !== 'string') throw new Error(`${what}: key column ${i + 1} is ${v === null ? 'NULL' : 'not sent'} in a row image`);
    return v;
  });
}

export class TableBatch {
  /** Final state per key, in order of first appearance. */
  readonly finals = new Map<string, FinalState>();
  changes = 0;

  constructor(
    readonly keyIdx: number[],
    private readonly what: string,
  ) {}

  add(c: RowChange): void {
    this.changes++;
    if (c.op === 'delete') {
      this.finals.set(keyString(c.oldKey), { kind: 'delete', key: c.oldKey });
      return;
    }
    const key = keyOf(c.values, this.keyIdx, this.what);
    const k = keyString(key);
    if (c.op === 'insert') {
      this.finals.set(k, { kind: 'image', key, values: c.values, origin: null });
      return;
    }
    const moved = c.oldKey && keyString(c.oldKey) !== k ? c.oldKey : null;
    const pre = moved ?? key;
    const preK = keyString(pre);
    const prev = this.finals.get(preK);
    if (moved) this.finals.set(preK, { kind: 'delete', key: moved });
    this.finals.set(k, image(key, prev, c.values, pre));
  }
}

/** The new image over the previous state of the same row in this batch. */
function image(key: Key, prev: FinalState | undefined, values: Datum[], pre: Key): Image {
  if (!isPartial(values)) return { kind: 'image', key, values, origin: null };
  if (prev?.kind === 'image') {
    const out = values.map((v, i) => (v === UNCHANGED ? prev.values[i] : v));
    return { kind: 'image', key, values: out, origin: isPartial(out) ? prev.origin : null };
  }
  // Not seen in this batch (or deleted in it, which a later update cannot follow): the pre-batch row.
  return { kind: 'image', key, values, origin: pre };
}
