// A pgshift worker as a separate OS process (`pgshift worker`), so tests can
// SIGKILL it mid-phase and start another, as happens in production.
import { type ChildProcess, spawn } from 'node:child_process';
import { inject } from 'vitest';
import { hasWorkers } from '../../client';
import { BIN } from './cli';
import { temporalClient } from './env';

// Killed when the test process exits, even after a timed-out test whose
// `finally` never ran: no worker outlives the suite.
const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of alive) c.kill('SIGKILL');
});

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function spawnWorker(taskQueue: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [BIN, 'worker', '--task-queue', taskQueue, ...args], {
    env: { ...process.env, TEMPORAL_ADDRESS: inject('temporal').address, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  alive.add(child);
  child.once('exit', () => alive.delete(child));
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // Ready once Temporal sees it polling (bundling the workflows takes a few seconds).
  const client = await temporalClient();
  try {
    const deadline = Date.now() + 90_000;
    while (!out.includes('polling task queue') || !(await hasWorkers(client, taskQueue))) {
      if (child.exitCode !== null) throw new Error(`worker exited early (${child.exitCode}): ${out}`);
      if (Date.now() > deadline) throw new Error(`worker did not start polling within 90 s: ${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await client.connection.close();
  }
  return {
    child,
    output: () => out,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
