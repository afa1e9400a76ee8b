// Test-side helpers: reach the suite's servers, make a fresh source/destination
// database pair with non-superuser roles, and run a real worker around a test.
import { randomBytes } from 'node:crypto';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, DefaultLogger } from '@temporalio/worker';
import { inject } from 'vitest';
import { createActivities } from '../../activities';
import { WORKER_DEFAULTS } from '../../worker';
import type { Config, ConfigInput } from '../../lib/config';
import { parseConfig } from '../../lib/io/config-load';
import { registerPairSource } from './pair-slots';
import { type ClusterHandle, clusterHandle, createDatabase, createRole } from '../../dev/postgres';

let runtimeInstalled = false;
function quietRuntime() {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // already installed in this process
  }
}

export const uid = () => randomBytes(4).toString('hex');

export function clusters() {
  return {
    pg15: clusterHandle(inject('pg15')),
    pg18: clusterHandle(inject('pg18')),
    pg15b: clusterHandle(inject('pg15b')),
    pg11: clusterHandle(inject('pg11')),
    pg14: clusterHandle(inject('pg14')),
  };
}

export interface Side {
  cluster: ClusterHandle;
  database: string;
  user: string;
  passwordEnv: string;
  /** Superuser SQL on this side's database. */
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface Pair {
  name: string;
  source: Side;
  destination: Side;
  /** Parsed config for this pair with `overrides` merged in. */
  config(overrides?: Partial<ConfigInput>): Config;
  raw(overrides?: Partial<ConfigInput>): ConfigInput;
}

/**
 * A fresh database on each side: source role with REPLICATION (not superuser),
 * destination role owning its database. Passwords live in env vars named by
 * the config, as in production.
 */
export async function makePair(opts: { source?: ClusterHandle; destination?: ClusterHandle; sourceRoleOptions?: string } = {}): Promise<Pair> {
  const cs = clusters();
  const src = opts.source ?? cs.pg15;
  const dst = opts.destination ?? cs.pg18;
  const id = uid();
  const name = `t_${id}`;
  const mk = async (cluster: ClusterHandle, role: string, roleOpts: string, owner: boolean): Promise<Side> => {
    const password = `pw-${uid()}-${uid()}`;
    const passwordEnv = `PGSHIFT_TEST_PW_${role.toUpperCase()}`;
    process.env[passwordEnv] = password;
    await createRole(cluster, role, password, roleOpts);
    await createDatabase(cluster, name, owner ? role : 'postgres');
    if (!owner) {
      // Read everything in the database and see every session, as a typical migration role would.
      if (cluster.version >= 14) await cluster.sql(`GRANT pg_read_all_data, pg_read_all_stats TO ${role}`, name);
      else {
        // No pg_read_all_data before 14: read what the superuser creates here from now on.
        await cluster.sql(
          `GRANT pg_read_all_stats TO ${role};
           ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT USAGE ON SCHEMAS TO ${role};
           ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT SELECT ON TABLES TO ${role};
           ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT SELECT ON SEQUENCES TO ${role};`,
          name,
        );
      }
    }
    return { cluster, database: name, user: role, passwordEnv, sql: (text, params) => cluster.sql(text, name, params) };
  };
  const source = await mk(src, `src_${id}`, opts.sourceRoleOptions ?? 'REPLICATION', false);
  registerPairSource(src, name);
  const destination = await mk(dst, `dst_${id}`, '', true);
  const raw = (overrides: Partial<ConfigInput> = {}): ConfigInput => ({
    name,
    source: { host: src.host, port: src.port, database: name, user: source.user, passwordEnv: source.passwordEnv },
    destination: { host: dst.host, port: dst.port, database: name, user: destination.user, passwordEnv: destination.passwordEnv },
    ...overrides,
  });
  return { name, source, destination, raw, config: (o) => parseConfig(raw(o)) };
}

/** A client of the suite's Temporal server (or of the server at `address`). */
export async function temporalClient(address?: string): Promise<TemporalClient> {
  const t = inject('temporal');
  const connection = await Connection.connect({ address: address ?? t.address });
  return new TemporalClient({ connection, namespace: t.namespace });
}

/** Run a real worker on its own task queue while `fn` runs (on the suite's Temporal server, or the one at `address`). */
export async function withWorker<T>(taskQueue: string, fn: () => Promise<T>, address?: string): Promise<T> {
  quietRuntime();
  const t = inject('temporal');
  const connection = await NativeConnection.connect({ address: address ?? t.address });
  try {
    const worker = await Worker.create({
      connection,
      namespace: t.namespace,
      taskQueue,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      ...WORKER_DEFAULTS,
      activities: createActivities(),
    });
    return await worker.runUntil(fn);
  } finally {
    await connection.close();
  }
}

/** A workflow history as searchable text, with every payload's data decoded. */
export function historyText(history: unknown): string {
  return JSON.stringify(history, (key, value) => {
    if (key === 'data' && typeof value === 'string') return Buffer.from(value, 'base64').toString('utf8');
    if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
    return value;
  });
}
