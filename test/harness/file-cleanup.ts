// Runs in every test file (vitest setupFiles): after the file, what its pairs
// left on the shared clusters that would hold back the next files is removed.
import { afterAll } from 'vitest';
import { dropPairSlots } from './pair-slots';

afterAll(dropPairSlots);
