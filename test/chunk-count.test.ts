// How many chunks the full load splits a table into: whole when it can be,
// split by the largest chunk size, and when one lane would otherwise copy it
// alone at the end.
import { describe, expect, it } from 'vitest';
import { chunkCount, chunkRules, type ChunkRules } from '../activities/full-load/plan';

const MB = 1 << 20;
const rules = (r: Partial<ChunkRules>): ChunkRules => ({ maxChunkBytes: 1024 * MB, laneShareBytes: Infinity, ...r });
const table = (mb: number) => ({ bytes: mb * MB });

describe('chunkCount', () => {
  it('copies a table whole when it is within the chunk size and one lane share', () => {
    // The bench's incompressible shape on two lanes: accounts 269, secrets 280, payments 17 MB (share 283 MB).
    const shape = [table(269), table(280), table(17)];
    const r = chunkRules(shape, 1024 * MB, 2);
    expect(r.laneShareBytes).toBe(((269 + 280 + 17) * MB) / 2);
    expect(shape.map((t) => chunkCount(t, r))).toEqual([1, 1, 1]);
    expect(chunkCount(table(0), rules({ laneShareBytes: 0 }))).toBe(1);
  });

  it('splits by the largest chunk size', () => {
    expect(chunkCount(table(10 * 1024), rules({}))).toBe(10);
    expect(chunkCount(table(5), rules({ maxChunkBytes: MB }))).toBe(5);
    expect(chunkCount({ bytes: 1e15 }, rules({ maxChunkBytes: MB }))).toBe(1000);
  });

  it('splits a table larger than one lane share of the bytes into ranges of half a share', () => {
    // The compressible shape: docs 556 of 902 MB on two lanes (share 451 MB): three ranges, so the
    // lanes even out at the end; accounts and payments whole.
    const shape = [table(556), table(269), table(77)];
    const r = chunkRules(shape, 1024 * MB, 2);
    expect(shape.map((t) => chunkCount(t, r))).toEqual([3, 1, 1]);
    // A single table on four lanes: eight ranges.
    const alone = table(800);
    expect(chunkCount(alone, chunkRules([alone], 1024 * MB, 4))).toBe(8);
  });

  it('does not split for balance into ranges below 64 MB', () => {
    expect(chunkCount(table(100), rules({ laneShareBytes: 25 * MB }))).toBe(1);
    expect(chunkCount(table(200), rules({ laneShareBytes: 50 * MB }))).toBe(3);
  });
});
