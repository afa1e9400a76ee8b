// How many chunks the full load splits a table into: whole when it can be,
// split by the largest chunk size, and split when one lane would otherwise
// copy it alone at the end.
import { describe, expect, it } from 'vitest';
import { chunkCount } from '../activities/full-load/plan';

const MB = 1 << 20;

describe('chunkCount', () => {
  it('copies a table whole when it is within the chunk size and one lane share', () => {
    // The bench's incompressible shape on two lanes: 269 + 280 + 17 MB, share 283 MB.
    expect(chunkCount(269 * MB, 1024 * MB, 283 * MB)).toBe(1);
    expect(chunkCount(280 * MB, 1024 * MB, 283 * MB)).toBe(1);
    expect(chunkCount(0, 1024 * MB, 0)).toBe(1);
  });

  it('splits by the largest chunk size', () => {
    expect(chunkCount(10 * 1024 * MB, 1024 * MB, Infinity)).toBe(10);
    expect(chunkCount(5 * MB, 1 * MB, Infinity)).toBe(5);
    expect(chunkCount(1e15, 1 * MB, Infinity)).toBe(1000);
  });

  it('splits a table larger than one lane share into ranges of half a share', () => {
    // 556 MB of 902 MB on two lanes (share 451 MB): three ranges, so the lanes even out at the end.
    expect(chunkCount(556 * MB, 1024 * MB, 451 * MB)).toBe(3);
    // A single table on four lanes: eight ranges.
    expect(chunkCount(800 * MB, 1024 * MB, 200 * MB)).toBe(8);
  });

  it('does not split for balance into ranges below 64 MB', () => {
    expect(chunkCount(100 * MB, 1024 * MB, 25 * MB)).toBe(1);
    expect(chunkCount(200 * MB, 1024 * MB, 50 * MB)).toBe(3);
  });
});
