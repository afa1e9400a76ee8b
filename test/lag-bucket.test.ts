import { describe, expect, it } from 'vitest';
import { lagBucket } from '../lib/search-attributes';

describe('lag bucket search attribute', () => {
  it('puts a lag into the bucket whose bound it stays under', () => {
    expect([0, 0.99, 1, 9.9, 10, 59, 60, 599, 600, 86_400].map(lagBucket)).toEqual([
      '<1s',
      '<1s',
      '<10s',
      '<10s',
      '<1m',
      '<1m',
      '<10m',
      '<10m',
      '>=10m',
      '>=10m',
    ]);
    expect(lagBucket(null)).toBeNull();
    expect(lagBucket(Number.NaN)).toBeNull();
  });
});
