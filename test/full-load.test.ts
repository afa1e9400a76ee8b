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
    const { final, cliBefore, cliAfter, clean } = await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      const final = await waitForMigration(client, config.name);
      await expectEdgeTablesIdentical(pair);
      // Clean: every range proved by the copy's fingerprint and an unchanged source, without the SQL digests.
      const clean = await Promise.all(Object.keys(final.state.dataVerification!.tables).map((table) => verifyTableData({ config, table })));
      // A clean table of several ranges is proved with one read of the destination's table against the sum of its
      // chunks' fingerprints, not one scan of it per range (the scans counted by the statistics, flushed when the
      // verification's session ends).
      const bulkKey = Object.entries(final.state.dataVerification!.tables).find(([, t]) => t.display === 'public.bulk')![0];
      const scans = async () =>
        Number(
          (
            await pair.destination.sql<{ n: string }>(
              `SELECT (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::text AS n FROM pg_stat_user_tables WHERE relid = 'public.bulk'::regclass`,
            )
          )[0].n,
        );
      const scansBefore = await scans();
      const once = await verifyTableData({ config, table: bulkKey });
      expect([once.consistent, once.fingerprintedRanges]).toEqual([true, once.ranges]);
      for (let i = 0; i < 50 && (await scans()) === scansBefore; i++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 1500));
      expect((await scans()) - scansBefore).toBe(1);
      const cliBefore = await runCli(['verify', config.name, '--data']);
      await pair.destination.sql(`UPDATE public.bulk SET payload = payload || '!' WHERE id = 777; DELETE FROM public.text_key WHERE v = 12345;
        INSERT INTO public.text_key VALUES ('zzz-extra', 0); UPDATE public.edge_builtin SET f8 = 0 WHERE id = 2`);
      const cliAfter = await runCli(['verify', `pgshift-${config.name}`]);
      return { final, cliBefore, cliAfter, clean };
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
    expect(clean.map((t) => [t.display, t.consistent, t.fingerprintedRanges])).toEqual(expect.arrayContaining(clean.map((t) => [t.display, true, t.ranges])));
    expect(clean.find((t) => t.display === 'public.bulk')!.ranges).toBeGreaterThan(2);

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
    expect(edge.fingerprintedRanges).toBeUndefined();

    // Each kind of change alone, in a binary-copied table (built-in types) and a text-copied one (user types),
    // is found with its key; undone, the range is proved by its fingerprint again.
    await pair.destination.sql(`UPDATE public.edge_builtin SET f8 = '-0' WHERE id = 2;
      CREATE TABLE public.saved_builtin AS TABLE public.edge_builtin; CREATE TABLE public.saved_user AS TABLE public.edge_user`);
    const cases: [string, string, string, string][] = [
      [
        'public.edge_builtin',
        'one byte in a TOASTed value',
        `UPDATE public.edge_builtin SET big = overlay(big PLACING 'X' FROM 15000 FOR 1) WHERE id = 1`,
        '1',
      ],
      ['public.edge_builtin', 'a numeric scale', `UPDATE public.edge_builtin SET money_like = money_like::numeric(60, 30) WHERE id = 3`, '3'],
      ['public.edge_builtin', 'json key order', `UPDATE public.edge_builtin SET j = '{"a":2,"b":1,"a":3}' WHERE id = 1`, '1'],
      ['public.edge_builtin', 'a missing row', `DELETE FROM public.edge_builtin WHERE id = 4`, '4'],
      ['public.edge_user', 'a composite field', `UPDATE public.edge_user SET p = ROW(1, 'x,"y" ') WHERE id = 1`, '1'],
      ['public.edge_user', 'one byte in a TOASTed value', `UPDATE public.edge_user SET note = overlay(note PLACING 'e' FROM 2000 FOR 1) WHERE id = 3`, '3'],
    ];
    for (const [display, what, tamper, id] of cases) {
      await pair.destination.sql(tamper);
      const found = await verifyTableData({ config, table: await keyOf(display) });
      expect([what, found.consistent, found.differingKeys], what).toEqual([
        what,
        false,
        [{ key: [id], problem: tamper.startsWith('DELETE') ? 'missing on destination' : 'different' }],
      ]);
      const saved = display === 'public.edge_builtin' ? 'public.saved_builtin' : 'public.saved_user';
      await pair.destination.sql(`DELETE FROM ${display} WHERE id = ${id}; INSERT INTO ${display} SELECT * FROM ${saved} WHERE id = ${id}`);
      const undone = await verifyTableData({ config, table: await keyOf(display) });
      expect([what, undone.consistent, undone.fingerprintedRanges], what).toEqual([what, true, undone.ranges]);
    }

    // The source changed since the copy (a new row version, same values): no proof for that range (the tampered
    // row 777 in it is undone), the digests compare it, consistent. Deleted on both sides alike: the same.
    await pair.source.sql(`UPDATE public.bulk SET payload = payload WHERE id = 5`);
    await pair.destination.sql(`UPDATE public.bulk SET payload = left(payload, -1) WHERE id = 777`);
    const touched = await verifyTableData({ config, table: await keyOf('public.bulk') });
    expect([touched.consistent, touched.fingerprintedRanges]).toEqual([true, touched.ranges - 1]);
    await pair.destination.sql(
      `DELETE FROM public.text_key WHERE code = 'zzz-extra'; INSERT INTO public.text_key VALUES ('code-012345${'-'.repeat(30)}', 12345)`,
    );
    expect((await verifyTableData({ config, table: await keyOf('public.text_key') })).fingerprintedRanges).toBeGreaterThan(1);
    await Promise.all([pair.source.sql(`DELETE FROM public.text_key WHERE v = 1`), pair.destination.sql(`DELETE FROM public.text_key WHERE v = 1`)]);
    const deleted = await verifyTableData({ config, table: await keyOf('public.text_key') });
    expect(deleted.consistent).toBe(true);
    expect(deleted.fingerprintedRanges).toBeLessThan(deleted.ranges);

    const [seq] = await pair.destination.sql<{ last_value: string; is_called: boolean }>('SELECT last_value, is_called FROM public.counter');
    expect(seq).toEqual({ last_value: '42', is_called: true });
    expect(final.state.sequences).toBe(1);
    await recordHistories(client, final.workflowId, 'migration-full-load-verify');
    await recordHistories(client, /\(workflow (\S+)\)/.exec(cliBefore.stdout)![1], 'verification-data');
    await client.connection.close();
  });
});
