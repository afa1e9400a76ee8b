// DDL replication end to end through the workflow (a real worker, 15 → 18,
// superuser source role for the event trigger): during the incremental phase a
// SET TABLESPACE is only reported (a warning alert), and a CHECK the
// destination refuses (a row only there violates it) stops the apply — a
// cutover is refused meanwhile, `pgshift status` names the entry, its LSN and
// the statement, a critical `ddl` alert reaches a local webhook — until the
// operator fixes the destination by hand and runs `pgshift ddl skip ID ENTRY`
// (the real CLI; the signal is in the workflow history). The writes after it
// flow, then an ADD COLUMN with rows before and after it flows too, and a
// cutover (fence none, full verification) ends the migration with a clean
// final verification.
import { describe, expect, it } from 'vitest';
import { cutover, getStatus, startMigration, waitForMigration } from '../client';
import { verifySchema } from '../activities/verify-schema';
import { capturePair } from './harness/capture';
import { tableRows } from './harness/capture-compare';
import { runCli } from './harness/cli';
import { temporalClient, uid, withWorker } from './harness/env';
import { recordHistories } from './harness/histories';
import { ONLINE_ACKNOWLEDGED, waitUntilApplied } from './harness/online';
import { waitUntil } from './harness/wait';
import { alertReceiver } from './harness/webhook';

describe('DDL replication through the workflow', () => {
  it('a refused DDL stops the apply (status, alert) until pgshift ddl skip; then writes and an ADD COLUMN flow, and the cutover verifies clean', async () => {
    const hook = await alertReceiver();
    const pair = await capturePair({ sourceRoleOptions: 'SUPERUSER REPLICATION' });
    await pair.source.sql(`
      CREATE SCHEMA app;
      CREATE TABLE app.items (id int PRIMARY KEY, qty int NOT NULL, name text);
      INSERT INTO app.items SELECT g, g, 'item ' || g FROM generate_series(1, 200) g`);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      objects: { schemas: ['app'] },
      acknowledgeWarnings: ONLINE_ACKNOWLEDGED!.filter((w) => w !== 'ddl-capture'),
      alerts: { webhookUrl: hook.url },
      cutover: { fence: 'none', verify: 'full', maxLagSeconds: 60 },
    });
    const client = await temporalClient();
    const rowsEqual = async () => expect(await tableRows(pair.destination, 'app.items', 'id')).toEqual(await tableRows(pair.source, 'app.items', 'id'));
    try {
      await withWorker(taskQueue, async () => {
        const workflowId = await startMigration(client, config);
        await waitUntil('the incremental phase', async () => ['incremental', 'failed'].includes((await getStatus(client, config.name)).state.phase), {
          timeoutMs: 60_000,
          everyMs: 250,
        });
        expect((await getStatus(client, config.name)).state.errors).toEqual([]);
        await pair.source.sql(`UPDATE app.items SET qty = qty + 1 WHERE id <= 10`);
        await waitUntilApplied(pair, config, 30_000);
        await rowsEqual();

        // A DDL that changes nothing pgshift replicates is reported (a warning alert), and the apply goes on.
        await pair.source.sql(`ALTER TABLE app.items SET TABLESPACE pg_default`);
        const reported = await waitUntil('the tablespace alert', async () => hook.alerts().find((a) => a.kind === 'ddl'), { timeoutMs: 30_000 });
        expect(reported).toMatchObject({ severity: 'warning', details: { statement: expect.stringContaining('SET TABLESPACE'), stopped: false } });
        // A row only on the destination makes the destination refuse the CHECK.
        await pair.destination.sql(`INSERT INTO app.items VALUES (-1, -1, 'only here')`);
        await pair.source.sql(`ALTER TABLE app.items ADD CONSTRAINT qty_positive CHECK (qty > 0)`);
        await pair.source.sql(`INSERT INTO app.items VALUES (201, 1, 'after the check')`);
        const blocked = await waitUntil('the apply stops at the DDL', async () => (await getStatus(client, config.name)).state.capture?.ddl?.blocked, {
          timeoutMs: 30_000,
          everyMs: 250,
        });
        expect(blocked).toMatchObject({
          what: 'blocked',
          tag: 'ALTER TABLE',
          statement: expect.stringContaining('qty_positive'),
          reason: expect.stringMatching(/destination refused/),
        });
        expect(await tableRows(pair.destination, 'app.items', 'id', 'id = 201')).toEqual([]);
        const status = await runCli(['status', config.name]);
        expect(status.code, status.stderr).toBe(0);
        expect(status.stdout).toContain(`the apply stopped at DDL entry ${blocked.entry} (ALTER TABLE at LSN ${blocked.lsn})`);
        expect(status.stdout).toContain('ADD CONSTRAINT qty_positive CHECK (qty > 0)');
        expect(status.stdout).toContain(`pgshift ddl skip <ID> ${blocked.entry}`);
        const alert = await waitUntil('the critical ddl alert', async () => hook.alerts().find((a) => a.kind === 'ddl' && a.severity === 'critical'), {
          timeoutMs: 15_000,
        });
        expect(alert).toMatchObject({ migration: config.name, severity: 'critical', details: { entry: blocked.entry, lsn: blocked.lsn, stopped: true } });
        expect(alert.message).toContain(`pgshift ddl skip ${config.name} ${blocked.entry}`);

        // No cutover while the apply cannot drain past the entry.
        const refused = await cutover(client, config.name);
        expect(refused).toEqual({ accepted: false, reason: expect.stringContaining(`stopped at DDL entry ${blocked.entry}`) });
        // The operator fixes the destination by hand, then skips the entry.
        await pair.destination.sql(`DELETE FROM app.items WHERE id = -1; ALTER TABLE app.items ADD CONSTRAINT qty_positive CHECK (qty > 0)`);
        const skip = await runCli(['ddl', 'skip', config.name, String(blocked.entry)]);
        expect(skip.code, skip.stderr).toBe(0);
        await pair.source.sql(`UPDATE app.items SET name = 'later' WHERE id = 5`);
        await waitUntilApplied(pair, config, 30_000);
        await rowsEqual();
        const s = await getStatus(client, config.name);
        expect(s.state.capture!.ddl).toMatchObject({ blocked: null, skipped: [blocked.entry] });
        const history = await client.workflow.getHandle(workflowId).fetchHistory();
        const signals = (history.events ?? []).map((e) => e.workflowExecutionSignaledEventAttributes).filter((a) => a?.signalName === 'ddlSkip');
        expect(signals).toHaveLength(1);
        expect(Buffer.from(signals[0]!.input!.payloads![0].data!).toString()).toBe(String(blocked.entry));

        // A supported DDL flows through the workflow: ADD COLUMN with rows before and after it.
        await pair.source.sql(`
          INSERT INTO app.items VALUES (202, 2, 'before color');
          ALTER TABLE app.items ADD COLUMN color text DEFAULT 'red';
          INSERT INTO app.items VALUES (203, 3, 'after color', 'blue');
          UPDATE app.items SET color = 'green' WHERE id <= 3`);
        await waitUntilApplied(pair, config, 30_000);
        await rowsEqual();
        expect((await verifySchema({ config })).differences).toEqual([]);

        let answer = await cutover(client, config.name);
        for (let i = 0; !answer.accepted && i < 30; i++) {
          await new Promise((r) => setTimeout(r, 1000));
          answer = await cutover(client, config.name);
        }
        expect(answer).toMatchObject({ accepted: true, fence: 'none', verify: 'full' });
        const final = await waitForMigration(client, config.name);
        await recordHistories(client, final.workflowId, 'migration-ddl-skip-cutover');
        expect(final.state.errors).toEqual([]);
        expect(final.state.phase).toBe('done');
        expect(final.state.cutover!.verification).toMatch(/all consistent/);
        // Counters of a round land in status when it ends: checked once the cutover has ended the last one.
        expect(final.state.capture!.ddl!.replayed).toBe(1);
        expect(final.state.capture!.ddl!.events).toContainEqual(expect.objectContaining({ entry: blocked.entry, what: 'skipped' }));
        await rowsEqual();
      });
    } finally {
      await client.connection.close();
      await hook.close();
    }
  }, 90_000);
});
