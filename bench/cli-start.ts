// CLI start time: how long `pgshift` takes from the spawn of its process to its first network
// request, as a user runs it (bin/pgshift, so the bundle and its code cache). The commands that
// talk to Temporal print a timestamp just before they connect (PGSHIFT_TRACE_START=1), and the
// CPU time they used until then, the figure a loaded machine distorts least. `release` (the
// source database) and `worker` (Temporal) are timed by a listening socket instead: the first
// connection it accepts is the first request, whatever code made it; the process is then
// killed. The worker is also timed to the moment it polls its task queue (ready for work).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const BIN = path.join(__dirname, '..', 'bin', 'pgshift');

interface StartSample {
  /** Spawn → the first request (or → exit, for a command that does not connect). */
  ms: number;
  cpuMs: number | null;
  entry: string;
}

const now = () => performance.timeOrigin + performance.now();

function spawnCli(bin: string, args: string[], address: string): { child: ChildProcess; t0: number; stderr: () => string } {
  const t0 = now();
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, TEMPORAL_ADDRESS: address, PGSHIFT_TRACE_START: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return { child, t0, stderr: () => stderr };
}

const traced = (stderr: string) => ({
  connect: /pgshift-trace: connect at ([\d.]+) cpu (\d+) ms/.exec(stderr),
  entry: /pgshift-trace: entry (\w+)/.exec(stderr)?.[1] ?? 'unknown',
});

const exited = (child: ChildProcess) => new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('close', () => r())));

/** A command that connects to Temporal (or `--help`, which exits): timed by its trace. */
async function once(bin: string, args: string[], address: string): Promise<StartSample> {
  const run = spawnCli(bin, args, address);
  await new Promise((resolve, reject) => {
    run.child.on('error', reject);
    run.child.on('close', resolve);
  });
  const { connect, entry } = traced(run.stderr());
  return { ms: (connect ? Number(connect[1]) : now()) - run.t0, cpuMs: connect ? Number(connect[2]) : null, entry };
}

/** A loopback port that records when it accepts its first connection (and drops every one). */
async function listener(): Promise<{ port: number; accepted: Promise<number>; close: () => void }> {
  let accept!: (t: number) => void;
  const accepted = new Promise<number>((r) => (accept = r));
  const server = createServer((socket) => {
    accept(now());
    socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, accepted, close: () => server.close() };
}

/** Spawn → the first connection `args(port)` makes to a listening socket; the process is then killed. */
async function onceToSocket(bin: string, args: (port: number) => string[], address: (port: number) => string): Promise<StartSample> {
  const l = await listener();
  try {
    const run = spawnCli(bin, args(l.port), address(l.port));
    const done = exited(run.child);
    const t = await Promise.race([l.accepted, done.then(() => null)]);
    run.child.kill('SIGKILL');
    await done;
    if (t === null) throw new Error(`pgshift ${args(l.port).join(' ')} exited before it connected: ${run.stderr()}`);
    const { connect, entry } = traced(run.stderr());
    return { ms: t - run.t0, cpuMs: connect ? Number(connect[2]) : null, entry };
  } finally {
    l.close();
  }
}

/** Spawn of `pgshift worker` → it polls its task queue on a real server; then SIGTERM. */
async function workerReady(bin: string, address: string, taskQueue: string): Promise<StartSample> {
  const run = spawnCli(bin, ['worker', '--task-queue', taskQueue], address);
  const done = exited(run.child);
  const t = await new Promise<number | null>((resolve) => {
    run.child.stderr!.on('data', () => run.stderr().includes('polling task queue') && resolve(now()));
    void done.then(() => resolve(null));
  });
  run.child.kill('SIGTERM');
  await done;
  if (t === null) throw new Error(`pgshift worker exited before it polled: ${run.stderr()}`);
  const { connect, entry } = traced(run.stderr());
  return { ms: t - run.t0, cpuMs: connect ? Number(connect[2]) : null, entry };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface CliStart {
  command: string;
  /** What the time runs to. */
  until: string;
  runs: number;
  medianMs: number;
  medianCpuMs: number | null;
  entry: string;
}

interface Case {
  command: string;
  until: string;
  run: () => Promise<StartSample>;
}

/**
 * Median of `runs` starts of each command (after one run that may build the bundle or its
 * cache). `bin` is the pgshift to time (another checkout's, to compare).
 */
export async function measureCliStart(address: string, runs = 10, bin = BIN): Promise<CliStart[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgshift-cli-start-'));
  const configFor = (port: number) => {
    const file = path.join(dir, `release-${port}.json`);
    const endpoint = (database: string) => ({ host: '127.0.0.1', port, database, user: 'pgshift' });
    writeFileSync(file, JSON.stringify({ name: 'clistart', source: endpoint('src'), destination: endpoint('dst') }));
    return file;
  };
  const viaTrace = (args: string[]): Case => ({
    command: args.join(' '),
    until: args[0] === '--help' ? 'exit' : 'Temporal connection',
    run: () => once(bin, args, address),
  });
  const cases: Case[] = [
    viaTrace(['--help']),
    viaTrace(['list']),
    viaTrace(['status', 'pgshift-bench-no-such-migration']),
    {
      command: 'release --config F',
      until: 'source connection',
      run: () =>
        onceToSocket(
          bin,
          (port) => ['release', '--config', configFor(port)],
          () => address,
        ),
    },
    {
      command: 'worker',
      until: 'Temporal connection',
      run: () =>
        onceToSocket(
          bin,
          () => ['worker', '--task-queue', 'pgshift-cli-start'],
          (port) => `127.0.0.1:${port}`,
        ),
    },
    { command: 'worker', until: 'polling its task queue', run: () => workerReady(bin, address, `pgshift-cli-start-${process.pid}`) },
  ];
  const out: CliStart[] = [];
  try {
    for (const c of cases) {
      await c.run();
      const samples: StartSample[] = [];
      for (let i = 0; i < runs; i++) samples.push(await c.run());
      const cpu = samples.map((s) => s.cpuMs).filter((x): x is number => x !== null);
      out.push({
        command: `pgshift ${c.command}`,
        until: c.until,
        runs,
        medianMs: median(samples.map((s) => s.ms)),
        medianCpuMs: cpu.length ? median(cpu) : null,
        entry: samples[0].entry,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

export function renderCliStart(rows: CliStart[]): string {
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return [
    `CLI start time (spawn of bin/pgshift → the event in "until"), median of ${rows[0]?.runs ?? 0} runs, load ${load}:`,
    '',
    '| command | until | ms | CPU ms until then | runs |',
    '|---|---|---:|---:|---|',
    ...rows.map((r) => `| \`${r.command}\` | ${r.until} | ${r.medianMs.toFixed(0)} | ${r.medianCpuMs ?? '—'} | ${r.entry} |`),
  ].join('\n');
}
