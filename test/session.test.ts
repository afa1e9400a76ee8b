// Sessions (lib/io/session.ts): named `pgshift <purpose> <migration>`, started
// with their purpose's settings; the both-sides helper never leaks the side
// that did connect; the fence ends exactly the writer sessions of its migration.
import type { Client } from 'pg';
import { describe, expect, it } from 'vitest';
import { claimRun, ensureControlSchema, fence } from '../activities/control';
import { ConnectionSetupError } from '../lib/io/pg';
import { applicationName, PURPOSES, session, withSession, withSessions, writerApplicationNames, type Purpose } from '../lib/io/session';
import { makePair, uid, type Side } from './harness/env';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const settings = async (c: Client) =>
  (
    await c.query(`SELECT current_setting('application_name') AS name, current_setting('DateStyle') AS datestyle, current_setting('TimeZone') AS tz,
                          current_setting('extra_float_digits') AS digits, current_setting('bytea_output') AS bytea,
                          current_setting('search_path') AS path, current_setting('default_transaction_read_only') AS ro`)
  ).rows[0];

/** Sessions with this application_name on a side. */
const sessionsNamed = async (side: Side, name: string): Promise<number> =>
  (await side.cluster.sql('SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = $2', 'postgres', [side.database, name])).length;

/** True once no session has this name (a closed session's backend takes a moment to exit). */
async function gone(side: Side, name: string): Promise<boolean> {
  for (const deadline = Date.now() + 2000; (await sessionsNamed(side, name)) && Date.now() < deadline;) await sleep(100);
  return (await sessionsNamed(side, name)) === 0;
}

describe('sessions', () => {
  it('are named by purpose and migration and start with the purpose’s settings', async () => {
    const pair = await makePair();
    const config = pair.config();
    const data = { datestyle: 'ISO, YMD', tz: 'UTC', digits: '3', bytea: 'hex' };
    expect(await withSession(config, 'source', 'copy', settings)).toMatchObject({ name: `pgshift copy ${config.name}`, ...data, ro: 'off' });
    expect(await withSession(config, 'destination', 'schema', settings)).toMatchObject({ name: `pgshift schema ${config.name}`, ...data, path: '' });
    expect(await withSession(config, 'source', 'precheck', settings)).toMatchObject({ name: `pgshift precheck ${config.name}`, ro: 'on' });
    // Cut to the 63 bytes PostgreSQL keeps, so the fence's names match the server's.
    expect(applicationName('verify-schema', 'm'.repeat(48))).toBe(`pgshift verify-schema ${'m'.repeat(41)}`);
  });

  it('on both sides: the side that connected is closed when the other cannot connect', async () => {
    const pair = await makePair();
    const missing = `PGSHIFT_TEST_UNSET_${uid()}`;
    for (const [broken, survivor] of [
      ['destination', pair.source],
      ['source', pair.destination],
    ] as const) {
      const config = pair.config({ [broken]: { ...pair.raw()[broken], passwordEnv: missing } });
      let ran = false;
      const err = await withSessions(config, 'verify', async () => {
        ran = true;
      }).catch((e) => e);
      expect(err).toBeInstanceOf(ConnectionSetupError);
      expect(err.message).toMatch(new RegExp(`^${broken}.passwordEnv`));
      expect(ran).toBe(false);
      expect(await gone(survivor, applicationName('verify', config.name))).toBe(true);
    }
    // …and both are closed after the work, failed or not.
    const config = pair.config();
    await expect(withSessions(config, 'verify', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await gone(pair.source, applicationName('verify', config.name))).toBe(true);
    expect(await gone(pair.destination, applicationName('verify', config.name))).toBe(true);
  });

  it('the fence ends every writer session of its migration, and no other', async () => {
    const pair = await makePair();
    const config = pair.config();
    const other = pair.config({ name: `${config.name}_other` });
    const runToken = `run-${uid()}`;
    await withSession(config, 'destination', 'prepare', async (c) => {
      await ensureControlSchema(c);
      await claimRun(c, config.name, runToken);
    });
    const purposes = Object.keys(PURPOSES) as Purpose[];
    const writers = purposes.filter((p) => PURPOSES[p].writer);
    expect(writers).toEqual(expect.arrayContaining(['copy', 'schema', 'indexes', 'sequences', 'apply']));
    expect(writerApplicationNames(config.name).sort()).toEqual(writers.map((p) => applicationName(p, config.name)).sort());

    const open: Client[] = [];
    try {
      // Every writer holds the run row as a fenced write does; everyone else is idle.
      for (const p of writers) {
        const c = await session(config, 'destination', p);
        open.push(c);
        await c.query('BEGIN');
        await c.query('SELECT 1 FROM pgshift.runs WHERE migration = $1 FOR SHARE', [config.name]);
      }
      for (const p of purposes.filter((p) => !PURPOSES[p].writer)) open.push(await session(config, 'destination', p));
      open.push(await session(other, 'destination', 'copy'));
      const t0 = Date.now();
      await withSession(config, 'destination', 'abort', (c) => fence(c, config.name, 'aborted'));
      expect(Date.now() - t0).toBeLessThan(10_000);
      for (const p of writers) expect(await gone(pair.destination, applicationName(p, config.name)), p).toBe(true);
      for (const p of purposes.filter((p) => !PURPOSES[p].writer)) expect(await sessionsNamed(pair.destination, applicationName(p, config.name)), p).toBe(1);
      expect(await sessionsNamed(pair.destination, applicationName('copy', other.name))).toBe(1);
    } finally {
      await Promise.all(open.map((c) => c.end().catch(() => undefined)));
    }
  });
});
