// SPEC §2 retry semantics, Temporal side: a dev server of this test alone,
// started with a database file so it keeps its state, is killed (SIGKILL)
// mid-incremental while the source keeps writing, and started again with the
// same file and port. The worker reconnects by itself, the workflow resumes
// where its history ends, the apply goes on from the position committed on the
// destination; after the cutover the destination equals the source and the
// full verification is clean, the source is released.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'vitest';
import { getStatus, startMigration } from '../client';
import { startDevServer } from '../dev/temporal';
import { clusters, temporalClient, uid, withWorker } from './harness/env';
import { onlineConfig, onlinePair, startWorkload } from './harness/online';
import { expectCleanCutover, waitForPhase } from './harness/outage';
import { sleep, waitUntil } from './harness/wait';

const DOWN_MS = 15_000;

describe('Temporal outage', () => {
  it('survives the Temporal server killed mid-incremental and started again on its database file; verifies clean', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pgshift-temporal-'));
    const server = await startDevServer({ ui: false, dbFile: path.join(dir, 'temporal.db') });
    try {
      const cs = clusters();
      const pair = await onlinePair(cs.pg15, cs.pg18);
      const taskQueue = `tq-${uid()}`;
      const config = onlineConfig(pair, { taskQueue, cutover: { fence: 'none', verify: 'full' } });
      const client = await temporalClient(server.address);
      try {
        await withWorker(
          taskQueue,
          async () => {
            await startMigration(client, config);
            const workload = startWorkload(pair.source);
            let changesBefore = 0;
            try {
              await waitForPhase(client, config.name, 'incremental', 180_000);
              const before = workload.rounds();
              await waitUntil('two workload rounds in the incremental phase', async () => workload.rounds() >= before + 2, { timeoutMs: 60_000 });
              changesBefore = (await getStatus(client, config.name)).state.capture!.changes;
              await server.kill();
              // The source keeps writing while Temporal is down; the lag grows.
              await sleep(DOWN_MS);
              await server.startAgain();
              // The workflow goes on: apply rounds complete again (their changes reach the workflow's state).
              await waitUntil(
                'apply rounds complete after the restart',
                async () => (await getStatus(client, config.name)).state.capture!.changes > changesBefore + 10_000,
                { timeoutMs: 120_000, everyMs: 500 },
              );
              const after = workload.rounds();
              await waitUntil('two workload rounds after the restart', async () => workload.rounds() >= after + 2, { timeoutMs: 60_000 });
            } finally {
              await workload.stop();
            }
            await expectCleanCutover(client, pair, config, 200_000);
          },
          server.address,
        );
      } finally {
        await client.connection.close();
      }
    } finally {
      await server.stop();
      if (!process.env.KEEP_TEMPORAL_DB) rmSync(dir, { recursive: true, force: true });
      else console.log('temporal db kept in', dir);
    }
  }, 420_000);
});
