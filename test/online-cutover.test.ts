// Cutover end to end, with the workload writing until the fence stops it:
//  - a cutover asked for during the full load is refused with the reason (the
//    update answers; a signal's refusal shows in status);
//  - after the consistency point it is accepted; the fence makes the
//    workload's next writes fail (read-only for every role), the drain
//    applies everything up to the fence, sequences are set, every row is
//    verified, and the source is released (slot, publication, control schema);
//  - the destination is identical to the source (the test's own comparison),
//    every sequence's next value on the destination exceeds the source's last;
//  - an activity with the run's token (a delayed retry from before the
//    cutover) can no longer write to the destination.
// And a cutover whose final verification fails (a row changed behind the
// migration's back) is undone: the fence is lifted, the apply goes on; an
// abort then leaves the source clean and writable.
import { describe, expect, it } from 'vitest';
import { runCli } from './harness/cli';
import { abort, cutover, getStatus, startMigration, throttle, waitForMigration } from '../client';
import { syncSequences } from '../activities/sequences';
import { expectOnlineTablesIdentical } from './fixtures/online-workload';
import { clusters, temporalClient, uid, withWorker } from './harness/env';
import { sleep, waitUntil } from './harness/wait';
import { onlineConfig, onlinePair, startTolerantWorkload } from './harness/online';
import type { CapturePair } from './harness/capture';
import { recordHistories } from './harness/histories';

async function sourceObjects(pair: CapturePair, name: string) {
  const [r] = await pair.source.sql<{ slots: string; pubs: string; schema: boolean; readonly: string | null }>(
    `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)::text AS slots,
            (SELECT count(*) FROM pg_publication WHERE pubname = $1)::text AS pubs,
            EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'pgshift') AS schema,
            (SELECT s FROM pg_db_role_setting d JOIN pg_database db ON db.oid = d.setdatabase, unnest(d.setconfig) s
              WHERE db.datname = current_database() AND d.setrole = 0 AND s LIKE 'default_transaction_read_only=%') AS readonly`,
    [`pgshift_${name}`],
  );
  return r;
}

describe('cutover', () => {
  it('is refused during the full load, then fences the source, drains, verifies, releases the source and retires the run token', async () => {
    const cs = clusters();
    const pair = await onlinePair(cs.pg15, cs.pg18);
    // The read-only fence is ALTER DATABASE and ends other sessions: the source role owns the database and may
    // signal other roles' backends, as the precheck's cutover-fence item advises.
    await pair.source.sql(`ALTER DATABASE ${pair.name} OWNER TO ${pair.source.user}; GRANT pg_signal_backend TO ${pair.source.user}`);
    const taskQueue = `tq-${uid()}`;
    const config = onlineConfig(pair, {
      taskQueue,
      // Slow at first so the test can ask for a cutover during the copy.
      throttle: { fullRowsPerSecond: 1000, fullMbPerSecond: null, incrementalRowsPerSecond: null },
      // The workload writes 10,000-row transactions back to back; on a shared 2-core machine the apply may trail by more than the default 5 s.
      cutover: { fence: 'read-only', graceSeconds: 2, verify: 'full', maxLagSeconds: 60 },
    });
    const client = await temporalClient();
    await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      await waitUntil('the slot exists', async () => (await getStatus(client, config.name)).state.capture, { timeoutMs: 60_000, everyMs: 100 });
      // A round every ~1.5 s: writes all through the copy and the apply, without piling up millions of rows to verify.
      const workload = startTolerantWorkload(pair.source, { pauseMs: 1000 });
      try {
        await waitUntil('the full load runs', async () => (await getStatus(client, config.name)).state.phase === 'full-load', {
          timeoutMs: 60_000,
          everyMs: 100,
        });
        const early = await cutover(client, config.name);
        expect(early).toEqual({ accepted: false, reason: expect.stringMatching(/full load/) });
        // The CLI says the same and exits 1.
        const refused = await runCli(['cutover', config.name, '--wait']);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/^cutover refused: still in full load/);
        await client.workflow.getHandle(`pgshift-${config.name}`).signal('cutover');
        await waitUntil(
          'the refused signal shows in status',
          async () => (await getStatus(client, config.name)).state.cutoverRefused?.reason.includes('full load'),
          {
            timeoutMs: 10_000,
          },
        );
        await throttle(client, config.name, { fullRowsPerSecond: null });

        await waitUntil('the incremental phase', async () => ['incremental', 'failed'].includes((await getStatus(client, config.name)).state.phase), {
          timeoutMs: 180_000,
          everyMs: 250,
        });
        expect((await getStatus(client, config.name)).state.phase).toBe('incremental');
        // Accepted as soon as the lag is measured and small.
        let answer = await cutover(client, config.name);
        for (let i = 0; !answer.accepted && i < 60; i++) {
          expect(answer.reason).toMatch(/lag/);
          await sleep(1000);
          answer = await cutover(client, config.name);
        }
        expect(answer).toEqual({ accepted: true, fence: 'read-only', verify: 'full' });
        await waitUntil('the fence stops the workload', async () => workload.lastFailure(), { timeoutMs: 60_000, everyMs: 100 });
      } finally {
        await workload.stop();
      }
      expect(workload.lastFailure()!.message).toMatch(/read-only transaction|terminat|connection/);

      const final = await waitForMigration(client, config.name);
      await recordHistories(client, final.workflowId, 'migration-online-cutover');
      expect(final.state.errors).toEqual([]);
      expect(final.state.phase).toBe('done');
      const c = final.state.cutover!;
      expect(c.finishedAt).not.toBeNull();
      expect(c.steps.map((s) => [s.name, s.status])).toEqual([
        ['fence', 'done'],
        ['stop-apply', 'done'],
        ['drain', 'done'],
        ['sequences', 'done'],
        ['materialized-views', 'done'],
        ['triggers', 'skipped'],
        ['verify', 'done'],
        ['fence-check', 'done'],
        ['ready', 'done'],
        ['release-source', 'done'],
        ['fence-destination', 'done'],
      ]);
      expect(c.verification).toMatch(/all consistent/);
      expect(c.downtimeSeconds).toBeGreaterThan(0);
      console.log(`cutover write downtime ${c.downtimeSeconds!.toFixed(2)} s; steps: ${c.steps.map((s) => `${s.name} ${s.detail ?? ''}`).join(' | ')}`);

      // After the fence no write gets through, whoever connects.
      await expect(pair.source.sql('INSERT INTO shop.tags VALUES (999, $1)', ['late'])).rejects.toThrow(/read-only transaction/);
      await expectOnlineTablesIdentical(pair);
      const [srcSeq] = await pair.source.sql<{ v: string }>('SELECT last_value::text AS v FROM shop.event_ids');
      const [dstSeq] = await pair.destination.sql<{ v: string }>("SELECT nextval('shop.event_ids')::text AS v");
      expect(BigInt(dstSeq.v)).toBeGreaterThan(BigInt(srcSeq.v));

      // The source keeps no slot, publication or control schema; it stays read-only (the application has moved).
      expect(await sourceObjects(pair, config.name)).toEqual({ slots: '0', pubs: '0', schema: false, readonly: 'default_transaction_read_only=on' });
      // A delayed activity of the run cannot write to the destination any more.
      await expect(syncSequences({ config, runToken: final.state.runToken })).rejects.toThrow(/fenced on the destination/);
    });
    await client.connection.close();
  }, 300_000);

  it('undoes a cutover whose final verification fails (fence lifted, apply goes on); an abort then leaves the source clean', async () => {
    const cs = clusters();
    const pair = await onlinePair(cs.pg15, cs.pg18);
    await pair.source.sql(`ALTER DATABASE ${pair.name} OWNER TO ${pair.source.user}; GRANT pg_signal_backend TO ${pair.source.user}`);
    const taskQueue = `tq-${uid()}`;
    const config = onlineConfig(pair, { taskQueue, cutover: { fence: 'read-only', graceSeconds: 1, verify: 'full' } });
    const client = await temporalClient();
    await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      await waitUntil('the incremental phase', async () => ['incremental', 'failed'].includes((await getStatus(client, config.name)).state.phase), {
        timeoutMs: 180_000,
        everyMs: 250,
      });
      // A row changed on the destination behind the migration's back (never touched by a source change).
      await pair.destination.sql('UPDATE shop.kinds SET updates = updates + 100 WHERE id = 2');
      let answer = await cutover(client, config.name);
      for (let i = 0; !answer.accepted && i < 60; i++) {
        await sleep(1000);
        answer = await cutover(client, config.name);
      }
      expect(answer.accepted).toBe(true);
      await waitUntil('the cutover fails', async () => (await getStatus(client, config.name)).state.cutover?.failure, { timeoutMs: 120_000, everyMs: 250 });
      await waitUntil('back to incremental', async () => (await getStatus(client, config.name)).state.phase === 'incremental', { timeoutMs: 30_000 });
      const s = await getStatus(client, config.name);
      expect(s.state.cutover!.failure).toMatch(/inconsistent/);
      expect(s.state.cutover!.steps.find((x) => x.name === 'verify')!.status).toBe('failed');
      expect(s.state.cutover!.steps.find((x) => x.name === 'fence')!.detail).toMatch(/lifted/);
      // The fence is lifted: the source takes writes again, and the apply goes on with them.
      expect((await sourceObjects(pair, config.name)).readonly).toBeNull();
      await pair.source.sql("INSERT INTO shop.tags VALUES (998, 'after the failed cutover')");
      await waitUntil(
        'the write after the failed cutover is applied',
        async () => (await pair.destination.sql('SELECT 1 FROM shop.tags WHERE id = 998')).length === 1,
        { timeoutMs: 60_000, everyMs: 250 },
      );

      await abort(client, config.name);
      const final = await waitForMigration(client, config.name);
      await recordHistories(client, final.workflowId, 'migration-online-cutover-undone-then-aborted');
      expect(final.state.phase).toBe('aborted');
      expect(await sourceObjects(pair, config.name)).toEqual({ slots: '0', pubs: '0', schema: false, readonly: null });
    });
    await client.connection.close();
  });
});
