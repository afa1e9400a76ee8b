// Reaching Temporal the way the `temporal` CLI does: profiles and
// TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_API_KEY / TEMPORAL_TLS_*
// via @temporalio/envconfig, then command-line flags on top.
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { cliType, SEARCH_ATTRIBUTES } from '../search-attributes';
import { traceFirstRequest } from './start-trace';

export interface TemporalFlags {
  address?: string;
  namespace?: string;
  profile?: string;
  apiKey?: string;
  tls?: boolean;
  tlsCertPath?: string;
  tlsKeyPath?: string;
  tlsCaPath?: string;
  tlsServerName?: string;
}

export interface ResolvedTemporal {
  connectionOptions: NativeConnectionOptions;
  namespace: string;
}

export function resolveTemporal(flags: TemporalFlags = {}): ResolvedTemporal {
  const loaded = loadClientConnectConfig({ profile: flags.profile });
  const opts: NativeConnectionOptions = { ...loaded.connectionOptions };
  opts.address = flags.address ?? opts.address ?? 'localhost:7233';
  if (flags.apiKey) opts.apiKey = flags.apiKey;
  const wantsTls = flags.tls || flags.tlsCertPath || flags.tlsCaPath || flags.tlsServerName;
  if (wantsTls) {
    opts.tls = {
      ...(typeof opts.tls === 'object' ? opts.tls : {}),
      ...(flags.tlsServerName ? { serverNameOverride: flags.tlsServerName } : {}),
      ...(flags.tlsCaPath ? { serverRootCACertificate: readFileSync(flags.tlsCaPath) } : {}),
      ...(flags.tlsCertPath && flags.tlsKeyPath ? { clientCertPair: { crt: readFileSync(flags.tlsCertPath), key: readFileSync(flags.tlsKeyPath) } } : {}),
    };
  }
  return { connectionOptions: opts, namespace: flags.namespace ?? loaded.namespace ?? 'default' };
}

export async function connectClient(flags: TemporalFlags = {}): Promise<Client> {
  const { connectionOptions, namespace } = resolveTemporal(flags);
  let connection: Connection;
  traceFirstRequest();
  try {
    connection = await Connection.connect({
      address: connectionOptions.address,
      tls: connectionOptions.tls,
      apiKey: connectionOptions.apiKey as string | undefined,
      metadata: connectionOptions.metadata,
      connectTimeout: '10s',
    });
  } catch (e) {
    throw new Error(
      `cannot reach Temporal at ${connectionOptions.address} (${(e as Error).message.split('\n')[0]}): start a server (temporal server start-dev) or set --address / TEMPORAL_ADDRESS`,
      { cause: e },
    );
  }
  return new Client({ connection, namespace });
}

/**
 * Make sure pgshift's search attributes exist. Registers the missing ones
 * through the operator service; where the caller may not, says exactly which
 * command an admin must run instead of surfacing a bare gRPC error.
 */
export async function ensureSearchAttributes(client: Client): Promise<void> {
  const namespace = client.options.namespace;
  const svc = client.connection.operatorService;
  let existing: Set<string>;
  try {
    const r = await svc.listSearchAttributes({ namespace });
    existing = new Set(Object.keys(r.customAttributes ?? {}));
  } catch (e) {
    throw adminHint(
      namespace,
      SEARCH_ATTRIBUTES.map((k) => k.name),
      e,
    );
  }
  const missing = SEARCH_ATTRIBUTES.filter((k) => !existing.has(k.name));
  if (!missing.length) return;
  const typeEnum: Record<string, number> = { TEXT: 1, KEYWORD: 2, INT: 3, DOUBLE: 4, BOOL: 5, DATETIME: 6, KEYWORD_LIST: 7 };
  try {
    await svc.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, typeEnum[k.type]])),
    });
  } catch (e) {
    throw adminHint(
      namespace,
      missing.map((k) => k.name),
      e,
    );
  }
}

function adminHint(namespace: string, names: string[], e: unknown): Error {
  const flags = names.map((n) => `--name ${n} --type ${cliType(SEARCH_ATTRIBUTES.find((k) => k.name === n)!.type)}`).join(' ');
  return new Error(
    `pgshift's search attributes (${names.join(', ')}) are missing in namespace ${namespace} and could not be registered ` +
      `(${(e as Error).message.split('\n')[0]}). Ask an admin to run:\n  temporal operator search-attribute create --namespace ${namespace} ${flags}`,
  );
}
