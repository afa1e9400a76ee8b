// bin/pgshift runs the bundled CLI (bin/bundle.js) and never a stale one: a changed source
// rebuilds it before it runs, a build that fails falls back to the sources through tsx, and a
// file rewritten with the same content (a checkout) does not cost a rebuild.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './harness/cli';

const ROOT = path.join(__dirname, '..');

describe('bundled CLI', () => {
  it('is what bin/pgshift runs in this checkout', async () => {
    const r = await runCli(['--help'], { PGSHIFT_TRACE_START: '1' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: pgshift');
    expect(r.stderr).toMatch(/pgshift-trace: entry bundle/);
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
    });
  });
});
