// Run the real `pgshift` command in a child process (async, so an in-process
// worker keeps running meanwhile).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, inject } from 'vitest';
import YAML from 'yaml';

export const BIN = path.join(__dirname, '..', '..', 'bin', 'pgshift');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, TEMPORAL_ADDRESS: inject('temporal').address, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let configDir: string | undefined;
// Registered for every test file that imports this module: its config files go with it.
afterAll(() => {
  if (configDir) rmSync(configDir, { recursive: true, force: true });
  configDir = undefined;
});

/** Write a config (object, or raw text as is) to a temporary file (removed after the test file). */
export function configFile(raw: unknown, ext: 'yaml' | 'json' = 'yaml'): string {
  configDir ??= mkdtempSync(path.join(tmpdir(), 'pgshift-cfg-'));
  const dir = mkdtempSync(path.join(configDir, 'c-'));
  const file = path.join(dir, `pgshift.${ext}`);
  writeFileSync(file, typeof raw === 'string' ? raw : ext === 'json' ? JSON.stringify(raw) : YAML.stringify(raw));
  return file;
}
