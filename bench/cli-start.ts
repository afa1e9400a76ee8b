// CLI start time: how long `pgshift` takes from the spawn of its process to its first network
// request (the Temporal connection), as a user runs it (bin/pgshift, so the bundle and its
// code cache). The CLI prints a timestamp just before it connects (PGSHIFT_TRACE_START=1), and
// the CPU time it used until then, the figure a loaded machine distorts least.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const BIN = path.join(__dirname, '..', 'bin', 'pgshift');

interface StartSample {
  /** Spawn → the connect trace (or → exit, for a command that does not connect). */
  ms: number;
  cpuMs: number | null;
  entry: string;
}

function once(args: string[], address: string): Promise<StartSample> {
  return new Promise((resolve, reject) => {
    const t0 = performance.timeOrigin + performance.now();
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, TEMPORAL_ADDRESS: address, PGSHIFT_TRACE_START: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', () => {
      const connect = /pgshift-trace: connect at ([\d.]+) cpu (\d+) ms/.exec(stderr);
      const entry = /pgshift-trace: entry (\w+)/.exec(stderr)?.[1] ?? 'unknown';
      const end = performance.timeOrigin + performance.now();
      resolve({ ms: (connect ? Number(connect[1]) : end) - t0, cpuMs: connect ? Number(connect[2]) : null, entry });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface CliStart {
  command: string;
  runs: number;
  medianMs: number;
  medianCpuMs: number | null;
  entry: string;
}

/** Median of `runs` starts of each command (after one run that may build the bundle or its cache). */
export async function measureCliStart(address: string, runs = 10): Promise<CliStart[]> {
  const commands = [['--help'], ['list'], ['status', 'pgshift-bench-no-such-migration']];
  const out: CliStart[] = [];
  for (const args of commands) {
    await once(args, address);
    const samples: StartSample[] = [];
    for (let i = 0; i < runs; i++) samples.push(await once(args, address));
    const cpu = samples.map((s) => s.cpuMs).filter((x): x is number => x !== null);
    out.push({
      command: `pgshift ${args.join(' ')}`,
      runs,
      medianMs: median(samples.map((s) => s.ms)),
      medianCpuMs: cpu.length ? median(cpu) : null,
      entry: samples[0].entry,
    });
  }
  return out;
}

export function renderCliStart(rows: CliStart[]): string {
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return [
    `CLI start time (spawn of bin/pgshift → its first network request; \`--help\` → exit), median of ${rows[0]?.runs ?? 0} runs, load ${load}:`,
    '',
    '| command | ms to first request | CPU ms until then | runs |',
    '|---|---:|---:|---|',
    ...rows.map((r) => `| \`${r.command}\` | ${r.medianMs.toFixed(0)} | ${r.medianCpuMs ?? '—'} | ${r.entry} |`),
  ].join('\n');
}
