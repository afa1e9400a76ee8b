// `pgshift release` after `temporal workflow terminate` of a running online
// migration: the terminated workflow could not clean up, so its slot would
// hold the source's WAL forever. Release removes the slot, the publication
// and the control schema (and, with --destination, the migration's control
// rows there, its fencing row included); a second run finds nothing left.
import { describe, expect, it } from 'vitest';
import { getStatus, startMigration } from '../client';
import { configFile, runCli } from './harness/cli';
import { clusters, temporalClient, uid, withWorker } from './harness/env';
import { waitUntil } from './harness/wait';
import { onlineConfig, onlinePair } from './harness/online';

describe('pgshift release', () => {
  it('removes what a terminated migration left on the source (and with --destination its control rows); a second run finds nothing', async () => {
    const cs = clusters();
    const pair = await onlinePair(cs.pg15, cs.pg18, { destinationHasData: true });
    const taskQueue = `tq-${uid()}`;
    const raw = pair.raw({ taskQueue, mode: { schema: false, full: false, incremental: true } });
    const config = onlineConfig(pair, { taskQueue, mode: { schema: false, full: false, incremental: true } });
    const file = configFile({ ...raw, objects: { schemas: ['shop'] }, acknowledgeWarnings: config.acknowledgeWarnings }, 'json');
    const client = await temporalClient();
    const slot = `pgshift_${config.name}`;
    const sourceObjects = async () =>
      (
        await pair.source.sql<{ n: string }>(
          `SELECT ((SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1) + (SELECT count(*) FROM pg_publication WHERE pubname = $1)
                 + (SELECT count(*) FROM pg_namespace WHERE nspname = 'pgshift'))::text AS n`,
          [slot],
        )
      )[0].n;
    await withWorker(taskQueue, async () => {
      const id = await startMigration(client, config);
      await waitUntil('the apply runs', async () => (await getStatus(client, id)).state.phase === 'incremental', { timeoutMs: 90_000, everyMs: 250 });
      await client.workflow.getHandle(id).terminate('test: a workflow that cannot clean up');
    });
    await client.connection.close();
    expect(await sourceObjects()).toBe('3');

    const first = await runCli(['release', '--config', file, '--destination']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`removed source: replication slot ${slot}`);
    expect(first.stdout).toContain(`removed source: publication ${slot}`);
    expect(first.stdout).toContain('removed source: control schema pgshift');
    expect(first.stdout).toMatch(/removed destination: \d+ control rows of migration/);
    expect(await sourceObjects()).toBe('0');
    expect(await pair.destination.sql(`SELECT 1 FROM pg_namespace WHERE nspname = 'pgshift'`)).toEqual([]);
    // Nothing secret in what it printed.
    expect(first.stdout).not.toContain(process.env[pair.source.passwordEnv]!);

    const second = await runCli(['release', '--config', file, '--destination']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout.trim()).toBe(`nothing left to release for migration ${config.name}`);
  });
});
