// SPEC §2 retry semantics: the destination cluster (its own, not the suite's shared
// one) stopped for 30 s during the full load and again during the incremental
// phase, then started on the same port and data directory: both outages are
// retried as connection failures, the migration resumes where it was and
// verifies clean (harness/outage.ts).
import { describe, it } from 'vitest';
import { databaseOutageScenario } from './harness/outage';

describe('destination outage', () => {
  it('survives the destination stopped for 30 s during the full load and during the incremental phase; verifies clean', async () => {
    await databaseOutageScenario('destination');
  }, 300_000);
});
