// How many chunks the full load splits a table into: whole when it can be,
// split by the largest chunk size, and when one lane would otherwise copy it
// alone at the end — unless its values are stored out of line (and compressed with lz4).
import { describe, expect, it } from 'vitest';
import { chunkCount, chunkRules, type ChunkRules } from '../activities/full-load/plan';

const MB = 1 << 20;
const rules = (r: Partial<ChunkRules>): ChunkRules => ({ maxChunkBytes: 1024 * MB, laneShareBytes: Infinity, pglz: false, ...r });
const table = (mb: number, toastMb = 0) => ({ bytes: mb * MB, toastBytes: toastMb * MB });

describe('chunkCount', () => {
  it('copies a table whole when it is within the chunk size and one lane share', () => {
    // The bench's incompressible shape on two lanes: 269 + 280 + 17 MB, share 283 MB.
    expect(chunkCount(table(269), rules({ laneShareBytes: 283 * MB }))).toBe(1);
    expect(chunkCount(table(280, 272), rules({ laneShareBytes: 283 * MB }))).toBe(1);
    expect(chunkCount(table(0), rules({ laneShareBytes: 0 }))).toBe(1);
  });

  it('splits by the largest chunk size', () => {
    expect(chunkCount(table(10 * 1024), rules({}))).toBe(10);
    expect(chunkCount(table(5), rules({ maxChunkBytes: MB }))).toBe(5);
    expect(chunkCount({ bytes: 1e15, toastBytes: 0 }, rules({ maxChunkBytes: MB }))).toBe(1000);
    // Out-of-line values too: the chunk is the unit of retry.
    expect(chunkCount(table(3000, 2900), rules({}))).toBe(3);
  });

  it('splits a table larger than one lane share of the bytes into ranges of half a share', () => {
    // 556 MB of 902 MB on two lanes (share 451 MB): three ranges, so the lanes even out at the end.
    expect(chunkCount(table(556), rules({ laneShareBytes: 451 * MB }))).toBe(3);
    // A single table on four lanes: eight ranges.
    const alone = table(800);
    expect(chunkCount(alone, chunkRules([alone], 1024 * MB, 4, 'lz4'))).toBe(8);
  });

  it('does not split for balance into ranges below 64 MB', () => {
    expect(chunkCount(table(100), rules({ laneShareBytes: 25 * MB }))).toBe(1);
    expect(chunkCount(table(200), rules({ laneShareBytes: 50 * MB }))).toBe(3);
  });

  it('does not split for balance a table whose bytes are mostly out of line', () => {
    // The compressible shape: docs (556 MB, nearly all TOAST) stays whole beside accounts and payments.
    const docs = table(556, 540);
    const accounts = table(269);
    const payments = table(77);
    const r = chunkRules([docs, accounts, payments], 1024 * MB, 2, 'lz4');
    expect(r.laneShareBytes).toBe(((556 + 269 + 77) * MB) / 2);
    expect([docs, accounts, payments].map((t) => chunkCount(t, r))).toEqual([1, 1, 1]);
    // The same bytes in line are split.
    expect(chunkCount(table(556, 100), r)).toBe(3);
    // With pglz, compressing costs more than the TOAST index's waits: split all the same.
    expect(chunkCount(docs, chunkRules([docs, accounts, payments], 1024 * MB, 2, 'pglz'))).toBe(3);
  });
});
