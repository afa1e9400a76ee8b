// The cutover's write fence on the source (cutover.fence: read-only).
//
// New transactions of the migrated database become read-only for every role:
// `ALTER DATABASE … SET default_transaction_read_only = on` applies to each
// session that connects afterwards, whoever it is (a fence on one role, as
// some tools do, leaves every other role writing). Sessions that connected
// before keep their old default, so they are ended: idle ones at once, those
// inside a transaction once it ends or when cutover.graceSeconds have passed.
// pgshift's own sessions (named `pgshift <purpose> <migration>`) and
// walsenders are left alone. The WAL position once no old session is left is
// the fence's position: no change of a migrated table may commit after it
// (the drain checks that).
//
// What was set is recorded in the source control schema (pgshift.fence), so
// an abort, a failed cutover or `pgshift release` restores the database's
// previous setting exactly. A session that explicitly sets
// default_transaction_read_only = off (or `BEGIN READ WRITE`) passes a
// read-only default; the drain's check reports such writes instead of
// missing them.
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { SOURCE_CONTROL_SCHEMA } from '../../lib/capture/names';
import { ident, literal, qualified } from '../../lib/ident';
import { withSession } from '../../lib/io/session';
import { heartbeat } from '../heartbeat';

const FENCE = qualified(SOURCE_CONTROL_SCHEMA, 'fence');

export interface FenceSourceResult {
  /** Source WAL position once no session from before the fence was left. */
  fenceLsn: string;
  /** Source clock when the read-only default was set. */
  fencedAt: string;
  /** Sessions ended: idle ones at once, the rest after the grace period. */
  terminatedIdle: number;
  terminatedAfterGrace: number;
  /** Sessions from before the fence the source role may not end (they keep a read-write default until they reconnect). */
  notEnded: string[];
  /** Seconds spent waiting for open transactions. */
  waitedSeconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ensureFenceTable(src: Client): Promise<void> {
  await src.query(`CREATE SCHEMA IF NOT EXISTS ${ident(SOURCE_CONTROL_SCHEMA)}`);
  await src.query(
    `CREATE TABLE IF NOT EXISTS ${FENCE} (
       migration text PRIMARY KEY,
       database  text NOT NULL,
       previous  text,
       fenced_at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
  );
}

/** The database's own default_transaction_read_only (pg_db_role_setting, all roles), or null when unset. */
async function databaseSetting(src: Client): Promise<string | null> {
  const r = await src.query<{ v: string | null }>(
    `SELECT (SELECT substr(s, length('default_transaction_read_only=') + 1) FROM unnest(d.setconfig) s WHERE s LIKE 'default_transaction_read_only=%') AS v
       FROM pg_db_role_setting d JOIN pg_database db ON db.oid = d.setdatabase
      WHERE db.datname = current_database() AND d.setrole = 0`,
  );
  return r.rows[0]?.v ?? null;
}

function explainPrivilege(e: unknown, database: string, user: string): never {
  if ((e as { code?: string }).code === '42501') {
    throw new Error(
      `cutover.fence read-only: source user ${user} may not ALTER DATABASE ${database} (${(e as Error).message}); ` +
        `make it the database's owner (ALTER DATABASE ${ident(database)} OWNER TO ${ident(user)}) or cut over with fence none once the application has stopped writing`,
    );
  }
  throw e;
}

export async function fenceSource(input: { config: Config; graceSeconds: number }): Promise<FenceSourceResult> {
  const { config, graceSeconds } = input;
  return withSession(config, 'source', 'cutover', async (src) => {
    const db = (await src.query<{ d: string }>('SELECT current_database() AS d')).rows[0].d;
    await ensureFenceTable(src);
    // A retried fence keeps the setting recorded by the first attempt (the database shows "on" by now).
    const previous = await databaseSetting(src);
    await src.query(`INSERT INTO ${FENCE} (migration, database, previous) VALUES ($1, $2, $3) ON CONFLICT (migration) DO NOTHING`, [config.name, db, previous]);
    await src.query(`ALTER DATABASE ${ident(db)} SET default_transaction_read_only = on`).catch((e) => explainPrivilege(e, db, config.source.user));
    const fencedAt = (await src.query<{ t: string }>('SELECT clock_timestamp()::text AS t')).rows[0].t;

    // Sessions of this database that connected before the fence and are not pgshift's own.
    const old = `datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
                 AND backend_start <= $1::timestamptz AND application_name NOT LIKE 'pgshift %'`;
    // Sessions the source role may not end (a superuser's, without being one; another role's, without
    // pg_signal_backend) are reported; the drain's fence check catches a write they still make.
    const cannotEnd = new Map<number, string>();
    const terminate = async (extra: string) => {
      const r = await src.query<{ pid: number; role: string | null }>(`SELECT pid, usename AS role FROM pg_stat_activity WHERE ${old} AND ${extra}`, [
        fencedAt,
      ]);
      let n = 0;
      for (const { pid, role } of r.rows) {
        if (cannotEnd.has(pid)) continue;
        try {
          await src.query('SELECT pg_terminate_backend($1)', [pid]);
          n++;
        } catch (e) {
          if ((e as { code?: string }).code !== '42501') throw e;
          cannotEnd.set(pid, role ?? '?');
        }
      }
      return n;
    };
    const remaining = async () =>
      Number(
        (
          await src.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_stat_activity WHERE ${old} AND NOT (pid = ANY($2))`, [
            fencedAt,
            [...cannotEnd.keys()],
          ])
        ).rows[0].n,
      );
    const started = Date.now();
    let terminatedIdle = 0;
    for (;;) {
      // Idle sessions hold no transaction: ending them loses nothing, and their next connection is read-only.
      terminatedIdle += await terminate(`state = 'idle'`);
      const open = await remaining();
      if (open === 0 || Date.now() - started >= graceSeconds * 1000) break;
      heartbeat({ waitingFor: open });
      await sleep(100);
    }
    const terminatedAfterGrace = await terminate('true');
    // Terminated backends roll back as they exit; wait until they are gone so nothing of theirs commits after the position.
    for (let i = 0; i < 100 && (await remaining()) > 0; i++) await sleep(50);
    const lsn = (await src.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l;
    const notEnded = [...cannotEnd].map(([pid, role]) => `pid ${pid} (role ${role})`);
    return { fenceLsn: lsn, fencedAt, terminatedIdle, terminatedAfterGrace, notEnded, waitedSeconds: (Date.now() - started) / 1000 };
  });
}

/** Restore the database's previous default_transaction_read_only, if this migration fenced it. Safe to run twice. */
export async function liftSourceFence(src: Client, migration: string, opts: { keep?: boolean } = {}): Promise<'lifted' | 'kept' | 'none'> {
  const t = await src.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [FENCE]);
  if (!t.rows[0].t) return 'none';
  const r = await src.query<{ database: string; previous: string | null }>(`SELECT database, previous FROM ${FENCE} WHERE migration = $1`, [migration]);
  const row = r.rows[0];
  if (!row) return 'none';
  if (!opts.keep) {
    if (row.previous === null) await src.query(`ALTER DATABASE ${ident(row.database)} RESET default_transaction_read_only`);
    else await src.query(`ALTER DATABASE ${ident(row.database)} SET default_transaction_read_only = ${literal(row.previous)}`);
  }
  await src.query(`DELETE FROM ${FENCE} WHERE migration = $1`, [migration]);
  return opts.keep ? 'kept' : 'lifted';
}

/** The activity: undo the fence of a cutover that did not reach `ready`. */
export async function liftFence(input: { config: Config }): Promise<{ lifted: boolean }> {
  return withSession(input.config, 'source', 'cutover', async (src) => ({ lifted: (await liftSourceFence(src, input.config.name)) === 'lifted' }));
}
