// Connection setup, in one place. Passwords are resolved here, inside the
// activity process, from the reference in the config; they never leave this
// module and never appear in an error message. Activities open their sessions
// through lib/io/session.ts, which names them and applies their settings.
import { readFileSync } from 'node:fs';
import { Client, type ClientConfig } from 'pg';
import type { Config, Endpoint } from '../config';
import { tappableSocket } from './copy-tap';
import { endWithActivity } from './cancel';
import { traceFirstRequest } from './start-trace';

export type Side = 'source' | 'destination';

/** A problem the operator fixes in the config or the worker's environment. */
export class ConnectionSetupError extends Error {
  constructor(
    message: string,
    /** true: a network-level failure worth retrying within the connection window. */
    readonly transient: boolean,
  ) {
    super(message);
    this.name = 'ConnectionSetupError';
  }
}

export function resolvePassword(side: Side, e: Endpoint): string | undefined {
  if (e.passwordEnv) {
    const v = process.env[e.passwordEnv];
    if (v === undefined || v === '') {
      throw new ConnectionSetupError(
        `${side}.passwordEnv: environment variable ${e.passwordEnv} is not set in the worker's environment, expected it to hold the ${side} password`,
        false,
      );
    }
    return v;
  }
  if (e.passwordFile) {
    try {
      return readFileSync(e.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConnectionSetupError(
        `${side}.passwordFile: cannot read ${e.passwordFile} on the worker (${(err as NodeJS.ErrnoException).code}), expected a readable file holding the ${side} password`,
        false,
      );
    }
  }
  return undefined; // trust / peer / .pgpass
}

function sslOptions(e: Endpoint): ClientConfig['ssl'] {
  switch (e.sslMode) {
    case 'disable':
    case 'prefer': // node-postgres cannot fall back; prefer means "plain unless the server insists"
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full':
      return {
        rejectUnauthorized: true,
        ca: e.sslRootCertFile ? readFileSync(e.sslRootCertFile, 'utf8') : undefined,
        ...(e.sslMode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
      };
  }
}

/** How a session's client talks to its server (lib/io/session.ts decides per purpose). */
export interface ClientMode {
  /**
   * A plain-TCP session gets a socket whose COPY output can be read straight
   * off it (lib/io/copy-tap.ts); a TLS session keeps the default one.
   */
  tappable?: boolean;
  /**
   * Statements issued without awaiting the one before are written at once
   * (each with its own Sync), so the server goes from one to the next
   * without a round trip; after an error, those behind it fail with 25P02
   * inside the transaction, as they would have run into its aborted state.
   */
  pipelined?: boolean;
}

export function clientConfig(config: Pick<Config, 'source' | 'destination'>, side: Side, applicationName: string, mode: ClientMode = {}): ClientConfig {
  const e = config[side];
  const ssl = sslOptions(e);
  return {
    ...(mode.tappable && !ssl ? { stream: () => tappableSocket() } : {}),
    ...(mode.pipelined ? { pipeline: true } : {}),
    host: e.host,
    port: e.port,
    database: e.database,
    user: e.user,
    password: resolvePassword(side, e),
    ssl,
    application_name: applicationName.slice(0, 63),
    connectionTimeoutMillis: 15_000,
    keepAlive: true,
  };
}

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN']);

/** Network-level failures (and server shutdown / overload) that a retry can cure. */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (!e) return false;
  if (err instanceof ConnectionSetupError) return err.transient;
  if (e.code && (TRANSIENT_CODES.has(e.code) || e.code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(e.code))) return true;
  // node-postgres' own texts: a session lost mid-query, and a query on a session an earlier error already broke.
  return /Connection terminated|timeout expired|Connection ended unexpectedly|has encountered a connection error and is not queryable|Client was closed and is not queryable/i.test(
    e.message ?? '',
  );
}

/** Explain a connect failure in terms of the config fields that cause it. */
export function describeConnectError(side: Side, e: Endpoint, err: unknown): ConnectionSetupError {
  if (err instanceof ConnectionSetupError) return err;
  const x = err as { code?: string; message?: string };
  const where = `${e.host}:${e.port}`;
  switch (x.code) {
    case 'ECONNREFUSED':
      return new ConnectionSetupError(
        `${side}.host/${side}.port: nothing accepts connections at ${where} (ECONNREFUSED), expected a running PostgreSQL server there`,
        true,
      );
    case 'ENOTFOUND':
      return new ConnectionSetupError(
        `${side}.host: host name ${JSON.stringify(e.host)} does not resolve (ENOTFOUND), expected a resolvable host name or an IP address`,
        true,
      );
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new ConnectionSetupError(`${side}.host: ${where} is unreachable (${x.code}), expected a network path from the worker to the server`, true);
    case '28P01':
    case '28000':
      return new ConnectionSetupError(
        `${side}.user: authentication failed for role ${JSON.stringify(e.user)} at ${where} (${x.code}), expected the role's password in ${e.passwordEnv ? `${side}.passwordEnv (${e.passwordEnv})` : e.passwordFile ? `${side}.passwordFile` : `${side}.passwordEnv or ${side}.passwordFile`} and a pg_hba.conf entry allowing it`,
        false,
      );
    case '3D000':
      return new ConnectionSetupError(
        `${side}.database: database ${JSON.stringify(e.database)} does not exist at ${where}, expected an existing database`,
        false,
      );
  }
  if (/timeout expired/i.test(x.message ?? '')) {
    return new ConnectionSetupError(`${side}.host: no answer from ${where} within 15 s, expected a reachable PostgreSQL server`, true);
  }
  return new ConnectionSetupError(`${side}: cannot connect to ${where}: ${x.message ?? String(err)}`, isConnectionError(err));
}

/**
 * Connect to one side of the migration; errors are ConnectionSetupError naming
 * the field to fix. Inside an activity the session ends with the activity's
 * cancellation (its running statement is cancelled on the server), or with
 * `endsWith` when given: an activity that stops cooperatively passes a signal
 * of its own (null: the caller ends it).
 */
export async function connect(
  config: Pick<Config, 'source' | 'destination'>,
  side: Side,
  applicationName = 'pgshift',
  endsWith?: AbortSignal | null,
  mode: ClientMode = {},
): Promise<Client> {
  let client: Client | undefined;
  try {
    client = new Client(clientConfig(config, side, applicationName, mode));
    // An idle connection dropped by the server must not crash the worker.
    client.on('error', () => undefined);
    traceFirstRequest();
    await client.connect();
    if (endsWith !== null) endWithActivity(client, config[side], endsWith);
    return client;
  } catch (err) {
    await client?.end().catch(() => undefined);
    throw describeConnectError(side, config[side], err);
  }
}
