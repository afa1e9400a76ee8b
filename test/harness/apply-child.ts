// The change apply in a child process (test/harness/apply-process.ts), so a
// test can SIGKILL it at any moment, as a crashed worker would die. Children
// still running when a test ends are killed.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach } from 'vitest';
import type { Config } from '../../lib/config';

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
});

export function spawnApply(config: Config, runToken: string) {
  const child = spawn(process.execPath, ['-r', require.resolve('tsx/cjs'), path.join(__dirname, 'apply-process.ts')], {
    env: { ...process.env, PGSHIFT_APPLY_INPUT: JSON.stringify({ config, runToken }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-10_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-10_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => (children.delete(child), r())));
  return {
    output: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
