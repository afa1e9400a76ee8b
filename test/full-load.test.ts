// Full load end to end through the workflow: chunked, parallel COPY with
// values at the edges of their types; an independent comparison finds every
// row identical; sequences follow the source.
import { describe, expect, it } from 'vitest';
import { verifyTableData } from '../activities/verify-data';
import { startMigration, waitForMigration } from '../client';
import { edgePair, expectEdgeTablesIdentical } from './fixtures/edge-values';
import { runCli } from './harness/cli';
import { temporalClient, uid, withWorker } from './harness/env';
import { recordHistories } from './harness/histories';

describe('full load', () => {
  it('copies edge values exactly, in several chunks, 15 → 18', async () => {
    const pair = await edgePair();
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: false, full: true, incremental: false },
      fullLoad: { chunkMb: 1 },
      parallelism: { tables: 3, indexes: 2 },
    });
    const client = await temporalClient();
    const { final, cliBefore, cliAfter } = await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      const final = await waitForMigration(client, config.name);
      await expectEdgeTablesIdentical(pair);
      const cliBefore = await runCli(['verify', config.name, '--data']);
      await pair.destination.sql(`UPDATE public.bulk SET payload = payload || '!' WHERE id = 777; DELETE FROM public.text_key WHERE v = 12345;
        INSERT INTO public.text_key VALUES ('zzz-extra', 0); UPDATE public.edge_builtin SET f8 = 0 WHERE id = 2`);
      const cliAfter = await runCli(['verify', `pgshift-${config.name}`]);
      return { final, cliBefore, cliAfter };
    });
    expect(final.state.phase).toBe('done');
    // fullLoad.toastCompression lz4 falls back to the server's default where lz4 is missing (this PostgreSQL 18 build).
    expect(await pair.destination.sql("SELECT pg_column_compression(big) AS c FROM public.edge_builtin WHERE big LIKE 'toast-%'")).toEqual([{ c: 'pglz' }]);
    const f = final.state.fullLoad!;
    const byTable = Object.fromEntries(Object.values(f.tables).map((t) => [t.display, t]));
    expect(byTable['public.bulk'].chunks).toBeGreaterThan(2);
    expect(byTable['public.text_key'].chunks).toBeGreaterThan(1);
    expect(byTable['public.bulk'].rows).toBe(30000);
    const v = final.state.dataVerification!;
    expect(Object.values(v.tables).map((t) => t.summary)).toEqual(
      expect.arrayContaining(['30,000 rows in public.bulk compared, consistent', '4 rows in public.edge_builtin compared, consistent']),
    );
    expect(Object.values(v.tables).every((t) => t.consistent)).toBe(true);

    // `pgshift verify`: consistent before tampering, differences after (by name or workflow id).
    expect(cliBefore.code, cliBefore.stderr).toBe(0);
    expect(cliBefore.stdout).toContain('ok   30,000 rows in public.bulk compared, consistent');
    expect(cliAfter.code).toBe(1);
    expect(cliAfter.stdout).toMatch(/DIFF 30,000 rows in public.bulk compared .* key \(777\) different/);

    // Tampering on the destination is found, down to the keys.
    const keyOf = async (display: string) => Object.entries(v.tables).find(([, t]) => t.display === display)![0];
    const bulk = await verifyTableData({ config, table: await keyOf('public.bulk') });
    expect(bulk.consistent).toBe(false);
    expect(bulk.differingKeys).toEqual([{ key: ['777'], problem: 'different' }]);
    expect(bulk.summary).toMatch(/^30,000 rows in public.bulk compared \(30,000 on the destination\), 1 of \d+ ranges differ; e.g. key \(777\) different$/);
    const tk = await verifyTableData({ config, table: await keyOf('public.text_key') });
    expect(tk.differingKeys).toEqual(
      expect.arrayContaining([
        { key: ['code-012345' + '-'.repeat(30)], problem: 'missing on destination' },
        { key: ['zzz-extra'], problem: 'extra on destination' },
      ]),
    );
    const edge = await verifyTableData({ config, table: await keyOf('public.edge_builtin') });
    expect(edge.differingKeys).toEqual([{ key: ['2'], problem: 'different' }]); // -0 vs 0 is a difference

    const [seq] = await pair.destination.sql<{ last_value: string; is_called: boolean }>('SELECT last_value, is_called FROM public.counter');
    expect(seq).toEqual({ last_value: '42', is_called: true });
    expect(final.state.sequences).toBe(1);
    await recordHistories(client, final.workflowId, 'migration-full-load-verify');
    await recordHistories(client, /\(workflow (\S+)\)/.exec(cliBefore.stdout)![1], 'verification-data');
    await client.connection.close();
  });
});
