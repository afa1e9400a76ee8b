// Full-load options: row filters (only matching rows, and verification agrees),
// and existingTargetTables: ignore (rows already on the destination are kept);
// a whole table pgshift made loads frozen, one that holds rows is never truncated for it.
import { describe, expect, it } from 'vitest';
import { verifyTableData } from '../activities/verify-data';
import { startMigration, waitForMigration } from '../client';
import { runCli } from './harness/cli';
import { clusters, makePair, temporalClient, uid, withWorker } from './harness/env';

const DDL = `CREATE TABLE public.events (id int PRIMARY KEY, kind text NOT NULL, at date NOT NULL);
             CREATE TABLE public.accounts (id int PRIMARY KEY, owner text NOT NULL);
             CREATE TABLE public.notes (id int PRIMARY KEY, body text NOT NULL);
             CREATE TABLE public.journal (at int NOT NULL, line text NOT NULL)`;

describe('full-load options', () => {
  it('honours row filters and keeps existing destination rows in ignore mode', async () => {
    // PostgreSQL 15 has lz4, so toastCompression: server-default is a real choice here.
    const pair = await makePair({ destination: clusters().pg15b });
    await pair.source.sql(`${DDL};
      INSERT INTO public.events SELECT g, CASE WHEN g % 3 = 0 THEN 'audit' ELSE 'sale' END, date '2026-01-01' + g % 300 FROM generate_series(1, 3000) g;
      INSERT INTO public.accounts SELECT g, 'source-' || g FROM generate_series(1, 100) g;
      INSERT INTO public.notes VALUES (1, repeat('a long note ', 10000));
      INSERT INTO public.journal SELECT g, 'source line ' || g FROM generate_series(1, 50) g`);
    // journal has no unique key, so its rows are loaded straight into it: the row already
    // there must survive (no truncate for a FREEZE load of a table that holds rows).
    await pair.destination.sql(`${DDL};
      INSERT INTO public.accounts VALUES (5, 'kept-on-destination'), (500, 'only-on-destination');
      INSERT INTO public.journal VALUES (0, 'kept-on-destination');
      GRANT ALL ON ALL TABLES IN SCHEMA public TO ${pair.destination.user}`);
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({
      taskQueue,
      mode: { schema: false, full: true, incremental: false },
      existingTargetTables: 'ignore',
      fullLoad: { toastCompression: 'server-default' },
      objects: { schemas: ['public'], filters: { 'public.events': "kind <> 'audit' AND at >= date '2026-03-01'" } },
    });
    const client = await temporalClient();
    const { final, text, json } = await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      const final = await waitForMigration(client, config.name);
      return { final, text: await runCli(['status', config.name]), json: await runCli(['status', `pgshift-${config.name}`, '--json']) };
    });
    // `pgshift status`: phase, per-table progress bars, rows, verification, by name or workflow id.
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/## pgshift t_\w+: done/);
    expect(text.stdout).toMatch(/### Full load: 100\.0 % \(4\/4 chunks, [\d,]+ rows/);
    expect(text.stdout).toMatch(/\| public\.events \| ██████████ 100 % \(1\/1 chunks\) \|/);
    expect(text.stdout).toContain('rows in public.events compared, consistent');
    expect(JSON.parse(json.stdout).state.phase).toBe('done');
    const [{ expected }] = await pair.source.sql<{ expected: number }>(
      "SELECT count(*)::int AS expected FROM public.events WHERE kind <> 'audit' AND at >= date '2026-03-01'",
    );
    expect(await pair.destination.sql('SELECT count(*)::int AS n FROM public.events')).toEqual([{ n: expected }]);
    expect(await pair.destination.sql("SELECT count(*)::int AS n FROM public.events WHERE kind = 'audit'")).toEqual([{ n: 0 }]);
    const events = Object.values(final.state.dataVerification!.tables).find((t) => t.display === 'public.events')!;
    expect(events.consistent).toBe(true);
    expect(events.summary).toBe(`${expected.toLocaleString('en-US')} rows in public.events compared, consistent`);
    // The filtered table is proved by the copy's fingerprint (the source's range counted with the filter); the
    // accounts, with rows kept from before, cannot be: the digests find those rows.
    const keyOf = (display: string) => Object.entries(final.state.dataVerification!.tables).find(([, t]) => t.display === display)![0];
    const again = await verifyTableData({ config, table: keyOf('public.events') });
    expect([again.consistent, again.fingerprintedRanges]).toEqual([true, again.ranges]);
    const kept = await verifyTableData({ config, table: keyOf('public.accounts') });
    expect(kept.fingerprintedRanges).toBeUndefined();
    expect(kept.differingKeys).toEqual([
      { key: ['5'], problem: 'different' },
      { key: ['500'], problem: 'extra on destination' },
    ]);

    // toastCompression: server-default keeps the destination's default (pglz).
    expect(await pair.destination.sql('SELECT pg_column_compression(body) AS c FROM public.notes')).toEqual([{ c: 'pglz' }]);

    const accounts = await pair.destination.sql<{ id: number; owner: string }>('SELECT id, owner FROM public.accounts WHERE id IN (4, 5, 6, 500) ORDER BY id');
    expect(accounts).toEqual([
      { id: 4, owner: 'source-4' },
      { id: 5, owner: 'kept-on-destination' },
      { id: 6, owner: 'source-6' },
      { id: 500, owner: 'only-on-destination' },
    ]);
    expect(await pair.destination.sql('SELECT count(*)::int AS n, min(at) AS first FROM public.journal')).toEqual([{ n: 51, first: 0 }]);
    expect(await pair.destination.sql('SELECT line FROM public.journal WHERE at = 0')).toEqual([{ line: 'kept-on-destination' }]);
    await client.connection.close();
  });

  it('compresses large values with lz4 during the load, unless told to keep the server default; loads whole tables frozen', async () => {
    const pair = await makePair({ destination: clusters().pg15b });
    await pair.source.sql(
      `CREATE TABLE public.notes (id int PRIMARY KEY, body text NOT NULL); INSERT INTO public.notes VALUES (1, repeat('a long note ', 10000));
       CREATE TABLE public.ledger (id int PRIMARY KEY, note int REFERENCES public.notes, amount numeric NOT NULL);
       INSERT INTO public.ledger SELECT g, 1, g FROM generate_series(1, 5000) g`,
    );
    const taskQueue = `tq-${uid()}`;
    const config = pair.config({ taskQueue, mode: { schema: true, full: true, incremental: false } });
    const client = await temporalClient();
    const final = await withWorker(taskQueue, async () => {
      await startMigration(client, config);
      return waitForMigration(client, config.name);
    });
    expect(final.state.phase).toBe('done');
    expect(await pair.destination.sql('SELECT pg_column_compression(body) AS c FROM public.notes')).toEqual([{ c: 'lz4' }]);
    // Only the load's sessions: the destination's own default is untouched.
    expect(await pair.destination.sql("SELECT current_setting('default_toast_compression') AS d")).toEqual([{ d: 'pglz' }]);
    // Each table was one chunk into a table pgshift had just made: loaded with FREEZE, every page
    // frozen and all-visible (a plain COPY leaves none so, and no vacuum freezes rows this young).
    await pair.destination.sql('CREATE EXTENSION IF NOT EXISTS pg_visibility');
    const vm = await pair.destination.sql<{ t: string; pages: number; frozen: number }>(
      `SELECT t, pg_relation_size(t::regclass)::int / 8192 AS pages, (pg_visibility_map_summary(t::regclass)).all_frozen::int AS frozen
         FROM unnest(ARRAY['public.notes', 'public.ledger']) AS t ORDER BY t`,
    );
    expect(vm.every((r) => r.pages > 0 && r.frozen === r.pages)).toBe(true);
    await client.connection.close();
  });
});
