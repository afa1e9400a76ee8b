// bin/pgshift runs the bundled CLI (bin/bundle.js) and never a stale one: a changed source
// rebuilds it before it runs, a build that fails falls back to the sources through tsx, and a
// file rewritten with the same content (a checkout) does not cost a rebuild. Every command runs
// from it, `release` and `worker` included; a worker runs the workflow bundle built ahead while
// it is fresh, and rebuilds it first when a workflow source changed.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { configFile, runCli } from './harness/cli';
import { uid } from './harness/env';
import { waitUntil } from './harness/wait';
import { workflowCode } from '../worker/workflow-code';

const ROOT = path.join(__dirname, '..');
const TRACE = { PGSHIFT_TRACE_START: '1' };

describe('bundled CLI', () => {
  it('is what bin/pgshift runs in this checkout', async () => {
    const r = await runCli(['--help'], TRACE);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: pgshift');
    expect(r.stderr).toMatch(/pgshift-trace: entry bundle/);
    expect(r.stderr).toContain('pgshift-trace: sources compiled at run time: 0; files loaded from node_modules: 0');
  });

  it('runs as an executable with the young generation the worker is tuned for', () => {
    const r = spawnSync(path.join(ROOT, 'bin', 'pgshift'), ['--help'], { env: { ...process.env, ...TRACE }, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('pgshift-trace: node flags: --max-semi-space-size=32 --initial-old-space-size=128');
  });

  it('runs release from the bundle: no source compiled before it connects to the source', async () => {
    // Port 1: nothing listens, the connection is refused at once.
    const endpoint = (database: string) => ({ host: '127.0.0.1', port: 1, database, user: 'pgshift' });
    const file = configFile({ name: `rel_${uid()}`, source: endpoint('src'), destination: endpoint('dst') });
    const r = await runCli(['release', '--config', file], TRACE);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('source.host/source.port: nothing accepts connections at 127.0.0.1:1 (ECONNREFUSED)');
    expect(r.stderr).toMatch(/pgshift-trace: entry bundle[^]*pgshift-trace: connect at [\d.]+ cpu \d+ ms/);
    expect(r.stderr).toContain('pgshift-trace: sources compiled at run time: 0; files loaded from node_modules: 0');
  });

  it('runs the worker from the bundle with the workflow bundle built ahead', async () => {
    // The set-up builds it; a test run that skipped the set-up builds it here.
    const setup = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'bundle.js')], { encoding: 'utf8' });
    expect(setup.status, setup.stderr).toBe(0);
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'pgshift'), 'worker', '--task-queue', `tq-${uid()}`], {
      env: { ...process.env, TEMPORAL_ADDRESS: inject('temporal').address, ...TRACE },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    try {
      await waitUntil('the worker polls', async () => stderr.includes('polling task queue') || child.exitCode !== null, { timeoutMs: 60_000, everyMs: 100 });
      expect(stderr).toContain('pgshift-trace: workflow bundle prebuilt');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, stderr).toBe(0);
    expect(stderr).toMatch(/pgshift-trace: entry bundle[^]*pgshift-trace: workflow bundle prebuilt[^]*pgshift-trace: connect at/);
    expect(stderr).toContain('pgshift-trace: sources compiled at run time: 0');
    // The Temporal SDK is bundled too: from node_modules, the native bridge's binary and its
    // locator, not the ~700 files of @temporalio/worker.
    expect(Number(/files loaded from node_modules: (\d+)/.exec(stderr)?.[1])).toBeLessThan(10);
  });

  describe('in a project whose sources change', () => {
    // A miniature checkout: the real bin/ and node_modules, a two-file cli/.
    const root = mkdtempSync(path.join(tmpdir(), 'pgshift-bundle-'));
    afterAll(() => rmSync(root, { recursive: true, force: true }));
    mkdirSync(path.join(root, 'bin'));
    mkdirSync(path.join(root, 'cli'));
    for (const f of ['pgshift', 'bundle.js']) copyFileSync(path.join(ROOT, 'bin', f), path.join(root, 'bin', f));
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
    writeFileSync(
      path.join(root, 'cli', 'index.ts'),
      "import { v } from './v';\nexport async function main(): Promise<number> {\n  console.log(v);\n  return 0;\n}\n",
    );
    const version = (text: string) => writeFileSync(path.join(root, 'cli', 'v.ts'), text);
    const run = () => {
      const r = spawnSync(process.execPath, [path.join(root, 'bin', 'pgshift')], { env: { ...process.env, PGSHIFT_TRACE_START: '1' }, encoding: 'utf8' });
      return { code: r.status, out: r.stdout.trim(), trace: r.stderr };
    };

    it('builds the bundle, then runs it with its code cache', () => {
      version("export const v = 'one';\n");
      const first = run();
      expect(first).toMatchObject({ code: 0, out: 'one' });
      expect(first.trace).toContain('bundle rebuilt (no bundle built yet)');
      const second = run();
      expect(second).toMatchObject({ code: 0, out: 'one' });
      expect(second.trace).not.toContain('rebuilt');
      expect(second.trace).toContain('entry bundle (code cache used)');
    });

    it('rebuilds when a source changed, not when it was only rewritten', () => {
      version("export const v = 'two, longer';\n");
      const changed = run();
      expect(changed).toMatchObject({ code: 0, out: 'two, longer' });
      expect(changed.trace).toContain('bundle rebuilt (cli/v.ts changed)');
      // Same length, other content, same mtime as a moment ago would be: checked by content.
      version("export const v = 'two, LONGER';\n");
      const later = new Date(Date.now() + 5000);
      utimesSync(path.join(root, 'cli', 'v.ts'), later, later);
      expect(run()).toMatchObject({ code: 0, out: 'two, LONGER' });
      // Rewritten with the same content (a new mtime): the bundle stands.
      version("export const v = 'two, LONGER';\n");
      const rewritten = run();
      expect(rewritten).toMatchObject({ code: 0, out: 'two, LONGER' });
      expect(rewritten.trace).not.toContain('rebuilt');
    });

    it('runs the sources through tsx when the bundle cannot be rebuilt', () => {
      // esbuild cannot resolve a package that is not installed; tsx requires it only if called.
      version("export const v = 'three';\nexport const never = () => require('pgshift-not-installed');\n");
      const r = run();
      expect(r).toMatchObject({ code: 0, out: 'three' });
      expect(r.trace).toContain('the bundled CLI could not be rebuilt');
      expect(r.trace).toContain('entry tsx');
      expect(r.trace).toMatch(/sources compiled at run time: [1-9]/);
    });
  });

  describe('the workflow bundle, in a project whose workflow sources change', () => {
    // A miniature checkout: the real bin/bundle.js and node_modules, a two-file workflows/.
    const root = mkdtempSync(path.join(tmpdir(), 'pgshift-wfbundle-'));
    afterAll(() => rmSync(root, { recursive: true, force: true }));
    mkdirSync(path.join(root, 'bin'));
    mkdirSync(path.join(root, 'workflows'));
    copyFileSync(path.join(ROOT, 'bin', 'bundle.js'), path.join(root, 'bin', 'bundle.js'));
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
    writeFileSync(path.join(root, 'workflows', 'index.ts'), "import { v } from './v';\nexport async function hello(): Promise<string> {\n  return v;\n}\n");
    const version = (text: string) => writeFileSync(path.join(root, 'workflows', 'v.ts'), `export const v = '${text}';\n`);
    const bundleFile = path.join(root, 'dist', 'bundle', 'workflows.js');

    it('is built when missing, then used as it is while fresh', async () => {
      version('wf-one');
      expect(await workflowCode(root)).toEqual({ workflowBundle: { codePath: bundleFile } });
      expect(readFileSync(bundleFile, 'utf8')).toContain('wf-one');
      const built = statSync(bundleFile).mtimeMs;
      expect(await workflowCode(root)).toEqual({ workflowBundle: { codePath: bundleFile } });
      expect(statSync(bundleFile).mtimeMs).toBe(built);
    });

    it('is rebuilt before it is used when a workflow source changed', async () => {
      version('wf-two, longer');
      expect(await workflowCode(root)).toEqual({ workflowBundle: { codePath: bundleFile } });
      const code = readFileSync(bundleFile, 'utf8');
      expect(code).toContain('wf-two, longer');
      expect(code).not.toContain('wf-one');
    });

    it('is not used when stale and it cannot be stored: the worker bundles the sources', async () => {
      version('wf-three');
      // A directory where the bundle goes: the build cannot replace it.
      rmSync(bundleFile);
      mkdirSync(bundleFile);
      writeFileSync(path.join(bundleFile, 'keep'), '');
      expect(await workflowCode(root)).toEqual({ workflowsPath: path.join(root, 'workflows', 'index.ts') });
      // The build's temporary file is not left behind.
      expect(readdirSync(path.dirname(bundleFile)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    });
  });
});
