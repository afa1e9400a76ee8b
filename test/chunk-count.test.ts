// How many chunks the full load splits a table into: whole when it can be,
// split by the largest chunk size, when one lane would otherwise copy it alone
// at the end, and across the lanes when its index builds dominate.
import { describe, expect, it } from 'vitest';
import { chunkCount, chunkRules, type ChunkRules } from '../activities/full-load/plan';

const MB = 1 << 20;
const rules = (r: Partial<ChunkRules>): ChunkRules => ({ maxChunkBytes: 1024 * MB, lanes: 2, laneShareBytes: Infinity, laneShareRows: null, ...r });
const table = (mb: number, estimatedRows = 0, indexes = 1) => ({ bytes: mb * MB, estimatedRows, indexes });

describe('chunkCount', () => {
  it('copies a table whole when it is within the chunk size and one lane share', () => {
    // The bench's incompressible shape on two lanes, data only: 269 + 280 + 17 MB, share 283 MB.
    expect(chunkCount(table(269, 2e6), rules({ laneShareBytes: 283 * MB }))).toBe(1);
    expect(chunkCount(table(280, 5e4), rules({ laneShareBytes: 283 * MB }))).toBe(1);
    expect(chunkCount(table(0), rules({ laneShareBytes: 0 }))).toBe(1);
  });

  it('splits by the largest chunk size', () => {
    expect(chunkCount(table(10 * 1024), rules({}))).toBe(10);
    expect(chunkCount(table(5), rules({ maxChunkBytes: MB }))).toBe(5);
    expect(chunkCount({ bytes: 1e15, estimatedRows: 0, indexes: 0 }, rules({ maxChunkBytes: MB }))).toBe(1000);
  });

  it('splits a table larger than one lane share of the bytes into ranges of half a share', () => {
    // 556 MB of 902 MB on two lanes (share 451 MB): three ranges, so the lanes even out at the end.
    expect(chunkCount(table(556), rules({ laneShareBytes: 451 * MB }))).toBe(3);
    // A single table on four lanes: eight ranges.
    expect(chunkCount(table(800), rules({ lanes: 4, laneShareBytes: 200 * MB }))).toBe(8);
  });

  it('splits a table with most of the rows across the lanes when its indexes are built after the copy', () => {
    // pgbench_accounts in the incompressible shape: 2M of 2.25M rows, share 1.125M.
    expect(chunkCount(table(269, 2e6), rules({ laneShareBytes: 283 * MB, laneShareRows: 1.125e6 }))).toBe(2);
    expect(chunkCount(table(269, 2e6), rules({ lanes: 4, laneShareBytes: 140 * MB, laneShareRows: 0.56e6 }))).toBe(4);
    // Without index builds after the copy (tables made beforehand), or without indexes: whole.
    expect(chunkCount(table(269, 2e6), rules({ laneShareBytes: 283 * MB }))).toBe(1);
    expect(chunkCount(table(269, 2e6, 0), rules({ laneShareBytes: 283 * MB, laneShareRows: 1.125e6 }))).toBe(1);
  });

  it('does not split for balance into ranges below 64 MB', () => {
    expect(chunkCount(table(100, 1e6), rules({ laneShareBytes: 25 * MB, laneShareRows: 1e5 }))).toBe(1);
    expect(chunkCount(table(200), rules({ laneShareBytes: 50 * MB }))).toBe(3);
  });

  it('balances the bytes of what the lanes do not copy together', () => {
    // The incompressible shape with index builds after the copy: accounts (most rows) on both lanes
    // first, then the 280 MB of secrets in four ranges over the 297 MB left, payments whole.
    const accounts = table(269, 2e6);
    const secrets = table(280, 5e4);
    const payments = table(17, 2e5, 2);
    const r = chunkRules([accounts, secrets, payments], 1024 * MB, 2, true);
    expect(r.laneShareRows).toBe(1.125e6);
    expect(r.laneShareBytes).toBe(((280 + 17) * MB) / 2);
    expect([accounts, secrets, payments].map((t) => chunkCount(t, r))).toEqual([2, 4, 1]);
    // Data only (the tables and their indexes exist beforehand): every table whole, one per lane.
    const d = chunkRules([accounts, secrets, payments], 1024 * MB, 2, false);
    expect([accounts, secrets, payments].map((t) => chunkCount(t, d))).toEqual([1, 1, 1]);
  });
});
