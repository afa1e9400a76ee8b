// Every precheck item with a failing and a passing case, against real servers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { precheck } from '../activities/precheck';
import type { ConfigInput } from '../lib/config';
import { type LocalCluster, startCluster } from '../dev/postgres';
import type { PrecheckId, PrecheckItem } from '../lib/precheck-catalog';
import { makePair, type Pair } from './harness/env';

const TABLE = 'CREATE TABLE public.t (id int PRIMARY KEY, v text)';

async function check(pair: Pair, overrides: Partial<ConfigInput> = {}): Promise<Record<PrecheckId, PrecheckItem>> {
  // These items are the requirements of an online migration: check them with change capture on.
  const items = await precheck({ config: pair.config({ mode: { schema: true, full: true, incremental: true }, ...overrides }) });
  return Object.fromEntries(items.map((i) => [i.id, i])) as Record<PrecheckId, PrecheckItem>;
}

describe('precheck items', () => {
  let pair: Pair;
  beforeAll(async () => {
    pair = await makePair();
    await pair.source.sql(TABLE);
  });

  it('passes every item on a clean pair', async () => {
    const r = await check(pair);
    const notPass = Object.values(r).filter((i) => i.verdict !== 'pass');
    // The test roles are not superusers: DDL capture and replica role are honest warnings.
    expect(notPass.map((i) => i.id).sort()).toEqual(['ddl-capture', 'replica-role']);
    expect(r['source-privileges'].cause).toMatch(/has REPLICATION and can read all 1 selected relations/);
    expect(r['server-versions'].cause).toMatch(/^source PostgreSQL 15\.\d+.* → destination 18\.\d+/);
  });

  it('cutover-fence: fails when the source role does not own the database, warns without pg_signal_backend, passes with both', async () => {
    const p = await makePair();
    await p.source.sql(TABLE);
    const fenced = { cutover: { fence: 'read-only' as const } };
    expect((await check(p))['cutover-fence'].cause).toMatch(/not needed: cutover.fence is none/);
    const notOwner = (await check(p, fenced))['cutover-fence'];
    expect(notOwner).toMatchObject({ verdict: 'fail', fix: expect.stringContaining(`ALTER DATABASE ${p.name} OWNER TO ${p.source.user}`) });
    await p.source.sql(`ALTER DATABASE ${p.name} OWNER TO ${p.source.user}`);
    expect((await check(p, fenced))['cutover-fence']).toMatchObject({
      verdict: 'warn',
      fix: expect.stringContaining(`GRANT pg_signal_backend TO ${p.source.user}`),
    });
    await p.source.sql(`GRANT pg_signal_backend TO ${p.source.user}`);
    expect((await check(p, fenced))['cutover-fence'].verdict).toBe('pass');
  });

  it('source role without REPLICATION fails source-privileges', async () => {
    const p = await makePair({ sourceRoleOptions: '' });
    await p.source.sql(TABLE);
    const r = await check(p);
    expect(r['source-privileges']).toMatchObject({ verdict: 'fail', fix: expect.stringContaining('REPLICATION') });
    expect(r['source-privileges'].cause).toMatch(/has neither REPLICATION nor SUPERUSER/);
    // …and is fine for a full-only migration, which needs no replication.
    expect((await check(p, { mode: { schema: true, full: true, incremental: false } }))['source-privileges'].verdict).toBe('pass');
  });

  it('a table the role may not read, and its sequence, fail source-privileges', async () => {
    const p = await makePair();
    await p.source.sql(`${TABLE}; CREATE SCHEMA priv; CREATE TABLE priv.secret (id serial PRIMARY KEY);`);
    await p.source.sql(`REVOKE pg_read_all_data FROM ${p.source.user}`);
    // (also blind to other sessions now: the long-transaction item must say so)
    const r = await check(p, { objects: { schemas: ['public', 'priv'] } });
    expect(r['source-privileges'].verdict).toBe('fail');
    expect(r['source-privileges'].cause).toMatch(
      /no SELECT on 2 selected relation\(s\): priv.secret, public.t.*no SELECT on 1 sequence\(s\).*priv.secret_id_seq/,
    );
    await p.source.sql(`REVOKE pg_read_all_stats FROM ${p.source.user}`);
    expect((await check(p))['long-running-transactions']).toMatchObject({ verdict: 'warn', fix: `GRANT pg_read_all_stats TO ${p.source.user};` });
  });

  it('existing target tables: fail under precheck-error, warn under ignore', async () => {
    const p = await makePair();
    await p.source.sql(TABLE);
    await p.destination.sql(TABLE);
    expect((await check(p))['existing-target-tables']).toMatchObject({ verdict: 'fail', cause: '1 table(s) already exist on the destination: public.t' });
    const ignore = (await check(p, { existingTargetTables: 'ignore' }))['existing-target-tables'];
    expect(ignore.verdict).toBe('warn');
    expect(ignore.cause).toMatch(/kept in the full load and overwritten by incremental changes/);
    // Without schema migration, existing tables are what is expected — and missing ones fail.
    expect((await check(p, { mode: { schema: false, full: true, incremental: true } }))['existing-target-tables'].verdict).toBe('pass');
    const none = await check(pair, { mode: { schema: false, full: true, incremental: true } });
    expect(none['existing-target-tables']).toMatchObject({ verdict: 'fail', objects: ['public.t'] });
    // Renaming the table away from the existing one passes.
    const renamed = await check(p, { objects: { rename: { tables: { 'public.t': 'public.t_new' } } } });
    expect(renamed['existing-target-tables'].verdict).toBe('pass');
  });

  it('a long-running transaction warns; its end passes', async () => {
    const p = await makePair();
    await p.source.sql(TABLE);
    const c = await p.source.cluster.connect(p.source.database);
    // The check is cluster-wide (slot creation waits for every transaction), and other test files share
    // this cluster: look for this transaction's pid, not for a count.
    const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    try {
      await c.query('BEGIN; SELECT txid_current()');
      await new Promise((r) => setTimeout(r, 2100));
      const r = await check(p, { precheck: { longTransactionSeconds: 1 } });
      expect(r['long-running-transactions']).toMatchObject({ verdict: 'warn', fix: expect.stringContaining('pg_terminate_backend') });
      expect(r['long-running-transactions'].cause).toMatch(/^\d+ transaction\(s\) open longer than 1 s: pid \d+/);
      expect(r['long-running-transactions'].cause).toContain(`pid ${pid} (`);
      // Acknowledged, it stays a warning but no longer blocks.
      const ack = await check(p, { precheck: { longTransactionSeconds: 1 }, acknowledgeWarnings: ['long-running-transactions'] });
      expect(ack['long-running-transactions'].acknowledged).toBe(true);
    } finally {
      await c.query('COMMIT');
      await c.end();
    }
    // Once it ends it is no longer reported (alone on the cluster the item passes).
    const after = (await check(p, { precheck: { longTransactionSeconds: 1 } }))['long-running-transactions'];
    expect(after.cause).not.toContain(`pid ${pid} (`);
  });

  it('an extension missing on the destination fails', async () => {
    const p = await makePair();
    await p.source.sql(`${TABLE}; CREATE EXTENSION old_snapshot`);
    const r = await check(p);
    expect(r.extensions).toMatchObject({ verdict: 'fail' });
    expect(r.extensions.cause).toMatch(/not available on the destination: old_snapshot/);
    await p.source.sql('DROP EXTENSION old_snapshot');
    expect((await check(p)).extensions.verdict).toBe('pass');
  });

  it('bad row filters and unknown names fail early with the server message', async () => {
    const bad = await check(pair, {
      objects: { include: ['public.t', 'public.nope'], filters: { 'public.t': 'no_such_column > 1', 'public.nope': 'true' } },
    });
    expect(bad['selected-objects']).toMatchObject({ verdict: 'fail' });
    expect(bad['selected-objects'].cause).toMatch(/not found on the source: table public.nope/);
    expect(bad['row-filters'].verdict).toBe('fail');
    expect(bad['row-filters'].cause).toMatch(/public.t: column "no_such_column" does not exist/);
    const smuggled = await check(pair, { objects: { filters: { 'public.t': 'true; DROP TABLE public.t' } } });
    expect(smuggled['row-filters'].verdict).toBe('fail');
    expect(await pair.source.sql("SELECT to_regclass('public.t') IS NOT NULL AS ok")).toEqual([{ ok: true }]);
    const good = await check(pair, { objects: { filters: { 'public.t': "v <> 'x' AND id > 10" } } });
    expect(good['row-filters']).toMatchObject({ verdict: 'pass', cause: '1 row filter(s) are valid conditions' });
  });

  it('keyless tables warn for incremental (each named with its fixes; acknowledged, applied exactly), pass for full-only; collisions after mapping fail', async () => {
    const p = await makePair();
    await p.source.sql(
      `CREATE TABLE public.no_key (v text); CREATE TABLE public."Log Book" (at timestamptz, line text);
       CREATE TABLE public."Orders" (id int PRIMARY KEY); CREATE TABLE public.orders (id int PRIMARY KEY)`,
    );
    const r = await check(p, { objects: { nameCase: 'lower' } });
    expect(r['primary-keys']).toMatchObject({ verdict: 'warn', objects: ['public."Log Book"', 'public.no_key'] });
    expect(r['primary-keys'].acknowledged).toBeUndefined();
    expect(r['primary-keys'].cause).toMatch(/2 table\(s\) without PRIMARY KEY or non-null UNIQUE key: public."Log Book", public.no_key/);
    for (const t of ['public."Log Book"', 'public.no_key']) {
      expect(r['primary-keys'].fix).toContain(`${t}: ALTER TABLE ${t} ADD PRIMARY KEY (…), or objects.exclude: [${t}]`);
    }
    expect(r['primary-keys'].fix).toMatch(/acknowledge this warning \(acknowledgeWarnings: \[primary-keys\]\): pgshift then sets REPLICA IDENTITY FULL/);
    const acked = await check(p, { objects: { nameCase: 'lower' }, acknowledgeWarnings: ['primary-keys'] });
    expect(acked['primary-keys']).toMatchObject({ verdict: 'warn', acknowledged: true });
    expect(r['identifier-collisions'].verdict).toBe('fail');
    expect(r['identifier-collisions'].cause).toMatch(/public."Orders" and public.orders would all become public.orders/);
    const full = await check(p, { mode: { schema: true, full: true, incremental: false }, objects: { exclude: ['public."Orders"'], nameCase: 'lower' } });
    expect(full['primary-keys'].verdict).toBe('pass');
    expect(full['identifier-collisions'].verdict).toBe('pass');
  });

  describe('server settings', () => {
    const clusters: LocalCluster[] = [];
    afterAll(async () => {
      await Promise.all(clusters.map((c) => c.stop()));
    });

    it('wal_level=replica fails source-wal-level; exhausted slots fail replication-slots', async () => {
      const replica = await startCluster({ version: 15, label: 'replica', settings: { wal_level: 'replica' } });
      const oneSlot = await startCluster({ version: 15, label: 'oneslot', settings: { max_replication_slots: 1 } });
      clusters.push(replica, oneSlot);
      const a = await makePair({ source: replica });
      await a.source.sql(TABLE);
      expect((await check(a))['source-wal-level']).toMatchObject({ verdict: 'fail', cause: 'wal_level is replica: changes cannot be decoded' });
      expect((await check(a, { mode: { schema: true, full: true, incremental: false } }))['source-wal-level'].verdict).toBe('pass');

      const b = await makePair({ source: oneSlot });
      await b.source.sql(TABLE);
      expect((await check(b))['replication-slots'].verdict).toBe('pass');
      await b.source.sql("SELECT pg_create_logical_replication_slot('someone_else', 'pgoutput')");
      expect((await check(b))['replication-slots']).toMatchObject({ verdict: 'fail', cause: 'all 1 replication slots are in use' });
      await b.source.sql("SELECT pg_drop_replication_slot('someone_else')");
    });
  });
});
