// Server-level precheck items: versions, encoding, WAL and replication
// settings, privileges, long-running and prepared transactions.
import type { Client } from 'pg';
import { displayName } from '../../lib/ident';
import { captureSlotName } from '../../lib/capture/names';
import { item, type PrecheckId, type PrecheckItem } from '../../lib/precheck-catalog';
import type { Check, PrecheckContext } from './context';

/** Run a check that needs one or both sides; "not checked" when a side is unreachable. */
export function needs(sides: ('source' | 'destination')[], id: PrecheckId, fn: (ctx: PrecheckContext) => Promise<PrecheckItem>): Check {
  const check: Check = async (ctx) => {
    const missing = sides.filter((s) => !ctx[s]);
    if (missing.length) return item(id, 'fail', `not checked: the ${missing.join(' and ')} is not reachable (see ${missing[0]}-connectivity)`);
    try {
      return await fn(ctx);
    } catch (e) {
      // One broken check must not hide the other items' answers.
      return item(id, 'fail', `the check itself failed: ${(e as Error).message}`, 'fix the cause (often a missing privilege), then run the precheck again');
    }
  };
  Object.defineProperty(check, 'name', { value: id });
  return check;
}

async function one<T>(c: Client, sql: string, params: unknown[] = []): Promise<T> {
  return (await c.query(sql, params)).rows[0] as T;
}

const notNeeded = (id: PrecheckId) => item(id, 'pass', 'not needed: incremental migration is off (mode.incremental: false)');

const serverVersions = needs(['source', 'destination'], 'server-versions', async ({ source, destination }) => {
  const q = "SELECT current_setting('server_version_num')::int AS v, current_setting('server_version') AS s";
  const [a, b] = await Promise.all([one<{ v: number; s: string }>(source!, q), one<{ v: number; s: string }>(destination!, q)]);
  const major = (v: number) => Math.floor(v / 10000);
  if (major(b.v) < major(a.v)) {
    return item(
      'server-versions',
      'fail',
      `destination PostgreSQL ${b.s} is older than source ${a.s}`,
      'migrate to a destination of the same or a newer major version',
    );
  }
  return item('server-versions', 'pass', `source PostgreSQL ${a.s} → destination ${b.s}`);
});

const encoding = needs(['source', 'destination'], 'encoding', async ({ source, destination }) => {
  const q = 'SELECT pg_encoding_to_char(encoding) AS e FROM pg_database WHERE datname = current_database()';
  const [a, b] = await Promise.all([one<{ e: string }>(source!, q), one<{ e: string }>(destination!, q)]);
  if (a.e !== b.e) {
    return item(
      'encoding',
      'fail',
      `source database encoding ${a.e}, destination ${b.e}: text could change or fail to convert`,
      `create the destination database with ENCODING '${a.e}'`,
    );
  }
  return item('encoding', 'pass', `both databases use ${a.e}`);
});

const sourceWalLevel = needs(['source'], 'source-wal-level', async ({ source, config }) => {
  if (!config.mode.incremental) return notNeeded('source-wal-level');
  const { w } = await one<{ w: string }>(source!, "SELECT current_setting('wal_level') AS w");
  if (w !== 'logical') {
    return item(
      'source-wal-level',
      'fail',
      `wal_level is ${w}: changes cannot be decoded`,
      'ALTER SYSTEM SET wal_level = logical; then restart the source server',
    );
  }
  return item('source-wal-level', 'pass', 'wal_level is logical');
});

const replicationSlots = needs(['source'], 'replication-slots', async ({ source, config }) => {
  if (!config.mode.incremental) return notNeeded('replication-slots');
  const r = await one<{ max: number; used: number; ours: boolean }>(
    source!,
    `SELECT current_setting('max_replication_slots')::int AS max, count(*)::int AS used, bool_or(slot_name = $1) AS ours FROM pg_replication_slots`,
    [captureSlotName(config)],
  );
  if (r.ours) return item('replication-slots', 'pass', `slot ${captureSlotName(config)} already exists (a resumed migration reuses it)`);
  if (r.max - r.used < 1) {
    return item(
      'replication-slots',
      'fail',
      `all ${r.max} replication slots are in use`,
      'drop an unused slot (SELECT pg_drop_replication_slot(name)) or raise max_replication_slots and restart',
    );
  }
  return item('replication-slots', 'pass', `${r.max - r.used} of ${r.max} replication slots free`);
});

const walSenders = needs(['source'], 'wal-senders', async ({ source, config }) => {
  if (!config.mode.incremental) return notNeeded('wal-senders');
  const r = await one<{ max: number; used: number }>(
    source!,
    `SELECT current_setting('max_wal_senders')::int AS max, (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'walsender') AS used`,
  );
  if (r.max - r.used < 1)
    return item('wal-senders', 'fail', `all ${r.max} WAL senders are busy`, 'raise max_wal_senders and restart, or stop another replication client');
  return item('wal-senders', 'pass', `${r.max - r.used} of ${r.max} WAL senders free`);
});

const sourcePrivileges = needs(['source'], 'source-privileges', async (ctx) => {
  const { source, config } = ctx;
  const role = await one<{ name: string; super: boolean; repl: boolean }>(
    source!,
    'SELECT rolname AS name, rolsuper AS super, rolreplication AS repl FROM pg_roles WHERE rolname = current_user',
  );
  const problems: string[] = [];
  const fixes: string[] = [];
  if (config.mode.incremental && !role.super && !role.repl) {
    problems.push(`role ${role.name} has neither REPLICATION nor SUPERUSER`);
    fixes.push(`ALTER ROLE ${displayName(role.name)} REPLICATION;`);
  }
  const tables = (await ctx.selection()).relations.filter((r) => r.kind !== 'v');
  const denied = await source!.query<{ oid: number }>(`SELECT oid FROM unnest($1::oid[]) AS oid WHERE NOT has_table_privilege(oid, 'SELECT')`, [
    tables.map((t) => t.oid),
  ]);
  const deniedNames = tables.filter((t) => denied.rows.some((d) => d.oid === t.oid)).map((t) => t.display);
  const seqs = await source!.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'S' AND n.nspname = ANY($1)
        -- CASE: the planner may evaluate the privilege before the relkind filter
        AND CASE WHEN c.relkind = 'S' THEN NOT has_sequence_privilege(c.oid, 'SELECT') ELSE false END ORDER BY 1`,
    [config.objects.schemas],
  );
  if (deniedNames.length) {
    problems.push(`no SELECT on ${deniedNames.length} selected relation(s): ${deniedNames.slice(0, 10).join(', ')}${deniedNames.length > 10 ? ', …' : ''}`);
    fixes.push(`GRANT SELECT ON ALL TABLES IN SCHEMA … TO ${displayName(role.name)}; (or GRANT pg_read_all_data TO ${displayName(role.name)})`);
  }
  if (seqs.rows.length) {
    problems.push(
      `no SELECT on ${seqs.rows.length} sequence(s) (their values are copied): ${seqs.rows
        .slice(0, 10)
        .map((r) => r.name)
        .join(', ')}`,
    );
    fixes.push(`GRANT SELECT ON ALL SEQUENCES IN SCHEMA … TO ${displayName(role.name)};`);
  }
  if (problems.length)
    return item('source-privileges', 'fail', problems.join('; '), fixes.join(' '), { objects: [...deniedNames, ...seqs.rows.map((r) => r.name)] });
  return item(
    'source-privileges',
    'pass',
    `role ${role.name}${role.super ? ' is superuser' : role.repl ? ' has REPLICATION' : ''} and can read all ${tables.length} selected relations and their sequences`,
  );
});

const destinationPrivileges = needs(['destination'], 'destination-privileges', async ({ destination }) => {
  const r = await one<{ name: string; create: boolean; owner: boolean; super: boolean; db: string }>(
    destination!,
    `SELECT current_user AS name, has_database_privilege(current_database(), 'CREATE') AS create, current_database() AS db,
            pg_get_userbyid(d.datdba) = current_user AS owner, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS super
       FROM pg_database d WHERE d.datname = current_database()`,
  );
  if (!r.create && !r.super) {
    return item(
      'destination-privileges',
      'fail',
      `role ${r.name} may not create schemas in database ${r.db}`,
      `ALTER DATABASE ${displayName(r.db)} OWNER TO ${displayName(r.name)}; (or GRANT CREATE ON DATABASE ${displayName(r.db)} TO ${displayName(r.name)})`,
    );
  }
  return item(
    'destination-privileges',
    'pass',
    `role ${r.name} ${r.super ? 'is superuser' : r.owner ? `owns database ${r.db}` : `may create in database ${r.db}`}`,
  );
});

const replicaRole = needs(['destination'], 'replica-role', async ({ destination, config }) => {
  if (!config.mode.incremental) return notNeeded('replica-role');
  // Before 15 only a superuser may set it; from 15 on it can be granted (has_parameter_privilege exists from 15 on).
  const v15 = (await one<{ v: number }>(destination!, "SELECT current_setting('server_version_num')::int AS v")).v >= 150000;
  const r = await one<{ ok: boolean; name: string }>(
    destination!,
    `SELECT current_user AS name, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)${v15 ? " OR has_parameter_privilege('session_replication_role', 'SET')" : ''} AS ok`,
  );
  if (!r.ok) {
    return item(
      'replica-role',
      'warn',
      `role ${r.name} may not SET session_replication_role = replica: during sync, destination triggers and foreign-key checks would fire on applied changes`,
      v15
        ? `GRANT SET ON PARAMETER session_replication_role TO ${displayName(r.name)}; (as a superuser)`
        : 'use a superuser as the destination role (before PostgreSQL 15 the setting cannot be granted), or acknowledge this warning',
    );
  }
  return item('replica-role', 'pass', `apply sessions can set session_replication_role = replica`);
});

const ddlCapture = needs(['source'], 'ddl-capture', async ({ source, config }) => {
  if (!config.mode.incremental) return notNeeded('ddl-capture');
  const r = await one<{ sup: boolean; name: string }>(source!, 'SELECT rolsuper AS sup, rolname AS name FROM pg_roles WHERE rolname = current_user');
  if (!r.sup) {
    return item(
      'ddl-capture',
      'warn',
      `role ${r.name} is not superuser: the event trigger that captures DDL cannot be created, so DDL on the source will not reach the destination`,
      'run the migration with a superuser on the source, or make no DDL change until cutover (acknowledge this warning)',
    );
  }
  return item('ddl-capture', 'pass', 'DDL will be captured by an event trigger');
});

/**
 * The cutover's read-only fence (cutover.fence: read-only) sets the source
 * database's default with ALTER DATABASE, which needs its owner, and ends the
 * sessions that connected before, which needs pg_signal_backend for other
 * roles' sessions (a superuser's only a superuser may end). Found now, not
 * at the cutover weeks later.
 */
const cutoverFence = needs(['source'], 'cutover-fence', async ({ source, config }) => {
  if (!config.mode.incremental) return notNeeded('cutover-fence');
  if (config.cutover.fence !== 'read-only')
    return item('cutover-fence', 'pass', 'not needed: cutover.fence is none (the application stops writing before the cutover)');
  const r = await one<{ name: string; db: string; owner: boolean; signal: boolean }>(
    source!,
    `SELECT current_user AS name, current_database() AS db,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
              OR pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER') AS owner,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS signal`,
  );
  if (!r.owner) {
    return item(
      'cutover-fence',
      'fail',
      `role ${r.name} does not own database ${r.db}: the cutover's read-only fence (ALTER DATABASE … SET default_transaction_read_only) would fail`,
      `ALTER DATABASE ${displayName(r.db)} OWNER TO ${displayName(r.name)}; (as a superuser), or set cutover.fence: none and stop the application's writes before the cutover`,
    );
  }
  if (!r.signal) {
    return item(
      'cutover-fence',
      'warn',
      `role ${r.name} may not end other roles' sessions: at the fence, sessions that connected before keep writing until they reconnect (the fence check then undoes the cutover)`,
      `GRANT pg_signal_backend TO ${displayName(r.name)}; (as a superuser), or acknowledge this warning and end the application's sessions yourself at the cutover`,
    );
  }
  return item('cutover-fence', 'pass', `the read-only fence can be set on ${r.db} and can end the sessions that connected before it`);
});

const walRetention = needs(['source'], 'wal-retention', async ({ source, config }) => {
  if (!config.mode.incremental) return notNeeded('wal-retention');
  const needDays = config.mode.full ? 7 : 1;
  const version = (await one<{ v: number }>(source!, "SELECT current_setting('server_version_num')::int AS v")).v;
  // max_slot_wal_keep_size exists from 13 on (before, nothing bounds what a slot keeps); pg_stat_wal from 14 on.
  const r =
    version < 130000
      ? { keep: '-1', rate: null }
      : await one<{ keep: string; rate: number | null }>(
          source!,
          `SELECT current_setting('max_slot_wal_keep_size') AS keep,
                  ${version >= 140000 ? '(SELECT wal_bytes / greatest(extract(epoch FROM now() - stats_reset), 1) FROM pg_stat_wal)::float8' : 'NULL::float8'} AS rate`,
        );
  if (r.keep === '-1') {
    return item('wal-retention', 'pass', 'max_slot_wal_keep_size = -1: the slot keeps all WAL it needs (watch the source disk while the migration runs)');
  }
  const keepBytes = await one<{ b: string }>(source!, `SELECT pg_size_bytes(current_setting('max_slot_wal_keep_size')) AS b`);
  const days = r.rate && r.rate > 0 ? Number(keepBytes.b) / r.rate / 86400 : Infinity;
  const what = `max_slot_wal_keep_size = ${r.keep} holds ${Number.isFinite(days) ? `about ${days.toFixed(1)} days` : 'an unknown time'} of WAL at the current rate`;
  if (days < needDays) {
    return item(
      'wal-retention',
      'warn',
      `${what}; a ${config.mode.full ? 'full + incremental' : 'incremental-only'} migration needs ${needDays === 7 ? '7 days' : '24 hours'} to survive an outage`,
      `ALTER SYSTEM SET max_slot_wal_keep_size = '${Math.ceil(((r.rate ?? 0) * needDays * 86400) / 1024 ** 3)}GB'; SELECT pg_reload_conf();`,
    );
  }
  return item('wal-retention', 'pass', what);
});

const longTransactions = needs(['source'], 'long-running-transactions', async ({ source, config }) => {
  const r = await source!.query<{ pid: number; age: string; state: string; who: string }>(
    `SELECT pid, date_trunc('second', now() - xact_start)::text AS age, state, coalesce(usename, '?') || '@' || coalesce(application_name, '') AS who
       FROM pg_stat_activity
      WHERE xact_start < now() - make_interval(secs => $1) AND pid <> pg_backend_pid() AND backend_type = 'client backend'
      ORDER BY xact_start`,
    [config.precheck.longTransactionSeconds],
  );
  // Without pg_read_all_stats, other roles' sessions show no xact_start: say so rather than pass blind.
  const sees = await one<{ ok: boolean; name: string }>(
    source!,
    `SELECT current_user AS name, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS ok`,
  );
  if (r.rows.length) {
    return item(
      'long-running-transactions',
      'warn',
      `${r.rows.length} transaction(s) open longer than ${config.precheck.longTransactionSeconds} s: ${r.rows
        .slice(0, 5)
        .map((x) => `pid ${x.pid} (${x.age}, ${x.state}, ${x.who})`)
        .join('; ')} — creating the replication slot waits for them, and they hold back WAL and vacuum`,
      'let them finish or end them (SELECT pg_terminate_backend(pid)), then run the precheck again',
    );
  }
  if (!sees.ok) {
    return item(
      'long-running-transactions',
      'warn',
      `role ${sees.name} cannot see other roles' transactions (pg_stat_activity hides them), so long-running ones could not be checked`,
      `GRANT pg_read_all_stats TO ${displayName(sees.name)};`,
    );
  }
  return item('long-running-transactions', 'pass', `no transaction open longer than ${config.precheck.longTransactionSeconds} s`);
});

const preparedTransactions = needs(['source'], 'prepared-transactions', async ({ source, config }) => {
  const r = await source!.query<{ gid: string; age: string }>(
    `SELECT gid, date_trunc('second', now() - prepared)::text AS age FROM pg_prepared_xacts ORDER BY prepared`,
  );
  if (!r.rows.length) return item('prepared-transactions', 'pass', 'no prepared transaction pending');
  const list = r.rows
    .slice(0, 5)
    .map((x) => `'${x.gid}' (${x.age})`)
    .join(', ');
  if (!config.mode.incremental)
    return item('prepared-transactions', 'pass', `${r.rows.length} prepared transaction(s) pending (${list}); harmless without incremental migration`);
  return item(
    'prepared-transactions',
    'fail',
    `${r.rows.length} prepared transaction(s) pending: ${list} — the replication slot cannot reach a consistent point while they are open`,
    "COMMIT PREPARED 'gid' or ROLLBACK PREPARED 'gid' for each",
  );
});

export const SERVER_CHECKS: Check[] = [
  serverVersions,
  encoding,
  sourceWalLevel,
  replicationSlots,
  walSenders,
  sourcePrivileges,
  destinationPrivileges,
  replicaRole,
  ddlCapture,
  cutoverFence,
  walRetention,
  longTransactions,
  preparedTransactions,
];
