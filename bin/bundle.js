// The bundled CLI: cli/index.ts and everything it loads (the Temporal client, commander, the
// config schema) in one minified file, dist/bundle/pgshift.js, run with a V8 code cache beside it.
// A start then costs one file read and no compilation: ~0.15 s instead of 2–3 s through tsx
// (or ~0.8 s of compiled dist/, which resolves and compiles hundreds of files). The worker
// (worker/index.ts, the activities, the Temporal worker SDK) is a second file beside it,
// dist/bundle/worker.js, with a cache of its own: only `pgshift worker` reads it, so the other
// commands do not pay for its megabyte.
//
// Freshness: the manifest records every project file the bundle was built from (size, mtime,
// sha1) and node_modules/.package-lock.json (rewritten by every npm install). A changed size is
// stale at once; a changed mtime alone is checked by content, so a checkout that rewrites
// files with the same content costs one hash, not a rebuild. A stat per file (~60 files) is
// well under a millisecond's work per file.
//
// The workflow bundle: workflows/index.ts bundled by the Temporal SDK (webpack), the code a worker
// runs in its isolates, built ahead (set-up, or the first worker start after a change) instead
// of at every `pgshift worker` start (seconds of webpack). Same directory, same freshness rule;
// its manifest lists the project files esbuild finds from workflows/index.ts (a superset of what
// webpack includes: both follow the same imports).
//
// Plain CommonJS (no TypeScript): bin/pgshift loads it before anything is compiled.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const OUT_DIR = 'dist/bundle';
const BUNDLE = 'pgshift.js';
const WORKER_BUNDLE = 'worker.js';
const MANIFEST = 'manifest.json';
const WORKFLOWS_ENTRY = 'workflows/index.ts';
const WORKFLOWS = 'workflows.js';
const WORKFLOWS_MANIFEST = 'workflows.manifest.json';
/** Changes with the manifest layout or the build options below: an older bundle is stale. */
const FORMAT = 3;

const paths = (root = ROOT) => {
  const dir = path.join(root, OUT_DIR);
  return {
    dir,
    bundle: path.join(dir, BUNDLE),
    workerBundle: path.join(dir, WORKER_BUNDLE),
    manifest: path.join(dir, MANIFEST),
    workflows: path.join(dir, WORKFLOWS),
    workflowsManifest: path.join(dir, WORKFLOWS_MANIFEST),
  };
};

const sha1 = (buf) => crypto.createHash('sha1').update(buf).digest('hex');

/** Files whose change makes the bundle stale, besides its own sources. */
const EXTRA_INPUTS = ['bin/bundle.js', 'node_modules/.package-lock.json'];

function record(root, rel) {
  const file = path.join(root, rel);
  const st = fs.statSync(file);
  return { path: rel, size: st.size, mtimeMs: st.mtimeMs, sha1: sha1(fs.readFileSync(file)) };
}

/** Null when the bundle is fresh, else why it is not (a missing bundle, a changed file). */
function staleness(root = ROOT) {
  return stalenessOf(root, paths(root).manifest, 'bundle');
}

/** Null when the workflow bundle is fresh, else why it is not. */
function workflowStaleness(root = ROOT) {
  return stalenessOf(root, paths(root).workflowsManifest, 'workflow bundle');
}

function stalenessOf(root, manifestFile, what) {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  } catch {
    return `no ${what} built yet`;
  }
  if (manifest.format !== FORMAT) return `${what} built by another version of bin/bundle.js`;
  if (manifest.node !== process.versions.node) return `${what} built for Node ${manifest.node}`;
  for (const out of manifest.outputs) {
    let size;
    try {
      size = fs.statSync(path.join(path.dirname(manifestFile), out.file)).size;
    } catch {
      size = -1;
    }
    if (size !== out.bytes) return `${OUT_DIR}/${out.file} is not the one built`;
  }
  for (const f of manifest.inputs) {
    let st;
    try {
      st = fs.statSync(path.join(root, f.path));
    } catch {
      return `${f.path} is gone`;
    }
    if (st.size !== f.size) return `${f.path} changed`;
    if (st.mtimeMs !== f.mtimeMs && sha1(fs.readFileSync(path.join(root, f.path))) !== f.sha1) return `${f.path} changed`;
  }
  return null;
}

/** Write a file so that a concurrent reader sees the old content or the new one, never a part. */
function writeAtomic(file, data) {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * @temporalio/worker inside the bundle too (loading it from node_modules is ~700 files, most of
 * a worker's start), all but what must stay files of its packages: the native bridge's binary
 * and the module that finds it beside itself (@temporalio/core-bridge/common.js), the file each
 * workflow thread runs, and the webpack bundler, which only a worker without a fresh workflow
 * bundle uses (loaded on first use). Two of the SDK's files are adapted for that; an SDK whose
 * files no longer read as expected is left outside whole, as it was before (slower, never wrong).
 */
function temporalWorkerPlugin(root) {
  let lib;
  try {
    lib = path.join(path.dirname(require.resolve('@temporalio/worker/package.json', { paths: [root] })), 'lib');
  } catch {
    return null;
  }
  const THREAD = "require.resolve('./workflow-worker-thread')";
  const threaded = path.join(lib, 'workflow', 'threaded-vm.js');
  const bundler = path.join(lib, 'workflow', 'bundler.js');
  const read = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
  const bundlerSource = read(bundler);
  let bridge;
  try {
    bridge = require.resolve('@temporalio/core-bridge', { paths: [lib] });
  } catch {
    return null;
  }
  if (!read(bridge).includes("require('./common')")) return null;
  if (
    !read(threaded).includes(THREAD) ||
    !/exports\.defaultWorkflowInterceptorModules = \[require\.resolve\('\.\.\/workflow-log-interceptor'\)\]/.test(bundlerSource)
  )
    return null;
  const bundlerExports = [...new Set([...bundlerSource.matchAll(/^exports\.(\w+) = /gm)].map((m) => m[1]))].filter(
    (n) => n !== 'defaultWorkflowInterceptorModules',
  );
  if (!bundlerExports.includes('bundleWorkflowCode') || !bundlerExports.includes('WorkflowCodeBundler')) return null;
  const escape = (f) => new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  return {
    name: 'temporal-worker',
    setup(b) {
      // The bridge's binary locator (it looks beside itself); the binary is a require of its path.
      b.onResolve({ filter: /^\.\/common$/ }, (a) => (a.importer === bridge ? { path: '@temporalio/core-bridge/common.js', external: true } : undefined));
      // The real bundler module, which the stand-in below loads from node_modules.
      b.onResolve({ filter: /^@temporalio\/worker\/lib\/workflow\/bundler\.js$/ }, (a) => ({ path: a.path, external: true }));
      b.onLoad({ filter: escape(threaded) }, () => ({
        loader: 'js',
        contents: read(threaded).replace(THREAD, "require.resolve('@temporalio/worker/lib/workflow/workflow-worker-thread')"),
      }));
      b.onLoad({ filter: escape(bundler) }, () => ({
        loader: 'js',
        contents: [
          `let real;`,
          `const load = () => (real ??= require(${JSON.stringify('@temporalio/worker/lib/workflow/bundler.js')}));`,
          `exports.defaultWorkflowInterceptorModules = [require.resolve('@temporalio/worker/lib/workflow-log-interceptor')];`,
          ...bundlerExports.map((n) => `Object.defineProperty(exports, ${JSON.stringify(n)}, { enumerable: true, get: () => load()[${JSON.stringify(n)}] });`),
        ].join('\n'),
      }));
    },
  };
}

/**
 * `require('../worker')` in the CLI bundle: the worker bundle, loaded (with its own code cache)
 * only by the `worker` command, so the other commands read and deserialize none of it.
 */
function workerStubPlugin(root) {
  const cli = path.join(root, 'cli', 'index.ts');
  return {
    name: 'worker-stub',
    setup(b) {
      b.onResolve({ filter: /^\.\.\/worker$/ }, (a) => (a.importer === cli ? { path: 'worker', namespace: 'pgshift-worker-bundle' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'pgshift-worker-bundle' }, () => ({
        loader: 'js',
        // __dirname: the CLI bundle's directory, dist/bundle.
        contents: `const path = require('node:path');\nconst root = path.join(__dirname, '..', '..');\nmodule.exports = require(path.join(root, 'bin', 'bundle.js')).load(root, 'worker').exports;\n`,
      }));
    },
  };
}

/**
 * Build the bundles and their manifest (esbuild: a devDependency, so only in a checkout): the
 * CLI (every command, `release` too) and the worker (worker/index.ts with the Temporal worker
 * SDK, but for the files temporalWorkerPlugin leaves in node_modules), which the CLI's `worker`
 * command loads. pg's optional native binding stays outside. Returns their size in bytes.
 */
async function build(root = ROOT) {
  const esbuild = require('esbuild');
  const p = paths(root);
  fs.mkdirSync(p.dir, { recursive: true });
  const sdk = temporalWorkerPlugin(root);
  const common = {
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    format: 'cjs',
    minify: true,
    // Error classes keep their names (messages and instanceof-by-name checks in the SDK).
    keepNames: true,
    external: ['tsx', 'pg-native', ...(sdk ? [] : ['@temporalio/worker'])],
    // Dynamic requires and resolves (the workflow bundle's tool, the SDK's files left in
    // node_modules, its debug replayer's) are meant to stay ones.
    logOverride: { 'indirect-require': 'silent', 'require-resolve-not-external': 'silent' },
    metafile: true,
    write: false,
    logLevel: 'error',
  };
  const builds = [{ file: BUNDLE, entry: 'cli/index.ts', plugins: [workerStubPlugin(root)] }];
  if (fs.existsSync(path.join(root, 'worker', 'index.ts'))) builds.push({ file: WORKER_BUNDLE, entry: 'worker/index.ts', plugins: sdk ? [sdk] : [] });
  const results = await Promise.all(builds.map((b) => esbuild.build({ ...common, entryPoints: [b.entry], plugins: b.plugins })));
  const inputs = projectInputs(root, { inputs: Object.assign({}, ...results.map((r) => r.metafile.inputs)) });
  const outputs = builds.map((b, i) => {
    const code = results[i].outputFiles[0].contents;
    return { file: b.file, code, bytes: code.length, sha1: sha1(code) };
  });
  // The bundles first, the manifest last: a reader that sees the new manifest sees the new bundles.
  for (const o of outputs) writeAtomic(path.join(p.dir, o.file), o.code);
  const caches = new Set(outputs.map((o) => cacheName(o.file, o.sha1)));
  for (const f of fs.readdirSync(p.dir)) if (f.endsWith('.cache') && !caches.has(f)) fs.rmSync(path.join(p.dir, f), { force: true });
  const manifest = { format: FORMAT, node: process.versions.node, outputs: outputs.map(({ file, bytes, sha1 }) => ({ file, bytes, sha1 })), inputs };
  writeAtomic(p.manifest, JSON.stringify(manifest, null, 1));
  return outputs.reduce((n, o) => n + o.bytes, 0);
}

const cacheName = (file, sha) => `${file}.${sha.slice(0, 12)}.cache`;

/**
 * build() for bin/pgshift, which cannot wait for a promise before it runs the CLI: esbuild runs
 * plugins only in an asynchronous build, so it runs in a child process (`node bin/bundle.js`).
 */
function buildSync(root = ROOT) {
  const r = require('node:child_process').spawnSync(process.execPath, [path.join(__dirname, 'bundle.js'), '--force', '--cli', '--root', root], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (r.status !== 0) throw new Error((r.stderr || r.error?.message || `exit ${r.status}`).trim().replace(/^\[bundle\] /, ''));
}

/** The manifest's records: the project files of an esbuild metafile and EXTRA_INPUTS. */
function projectInputs(root, metafile) {
  return (
    Object.keys(metafile.inputs)
      // Not packages, nor modules a plugin made up (namespace:path, as the worker stub).
      .filter((f) => !f.split('/').includes('node_modules') && !/^[\w-]+:/.test(f))
      .concat(EXTRA_INPUTS.filter((f) => fs.existsSync(path.join(root, f))))
      .map((f) => record(root, f))
  );
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m) => process.stderr.write(`[workflow bundle] ${m}\n`),
  error: (m) => process.stderr.write(`[workflow bundle] ${m}\n`),
};

/**
 * Build the workflow bundle and its manifest (the SDK's webpack, and esbuild for the list of
 * inputs, recorded before webpack reads them: a file changed meanwhile makes the result stale,
 * not wrong). Returns the bundle's size in bytes.
 */
async function buildWorkflows(root = ROOT) {
  const esbuild = require('esbuild');
  const { bundleWorkflowCode } = require(require.resolve('@temporalio/worker', { paths: [root] }));
  const p = paths(root);
  fs.mkdirSync(p.dir, { recursive: true });
  const graph = esbuild.buildSync({
    absWorkingDir: root,
    entryPoints: [WORKFLOWS_ENTRY],
    bundle: true,
    packages: 'external',
    platform: 'neutral',
    format: 'cjs',
    metafile: true,
    write: false,
    logLevel: 'error',
  });
  const inputs = projectInputs(root, graph.metafile);
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(root, WORKFLOWS_ENTRY), logger: quietLogger });
  writeAtomic(p.workflows, code);
  writeAtomic(
    p.workflowsManifest,
    JSON.stringify(
      { format: FORMAT, node: process.versions.node, outputs: [{ file: WORKFLOWS, bytes: fs.statSync(p.workflows).size, sha1: sha1(code) }], inputs },
      null,
      1,
    ),
  );
  return code.length;
}

/**
 * Run the bundle as a CommonJS module compiled with V8's code cache (the way v8-compile-cache
 * does; Node 20 has no module.enableCompileCache). The cache file is named after the bundle's
 * hash, so a rebuilt bundle never meets an old cache; V8 rejects one made by another V8 or
 * with other flags. Missing or rejected, it is written when the process exits, once the
 * modules every command loads lazily are loaded too: one cache serves all commands (the worker
 * bundle has its own, written at the exit of a worker).
 */
function load(root = ROOT, which = 'cli') {
  const vm = require('node:vm');
  const Module = require('node:module');
  const p = paths(root);
  const manifest = JSON.parse(fs.readFileSync(p.manifest, 'utf8'));
  const name = which === 'worker' ? WORKER_BUNDLE : BUNDLE;
  const file = path.join(p.dir, name);
  const source = fs.readFileSync(file, 'utf8');
  const cacheFile = path.join(p.dir, cacheName(name, manifest.outputs.find((o) => o.file === name).sha1));
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  const cacheUsed = cachedData !== undefined && !script.cachedDataRejected;
  if (!cacheUsed) {
    process.once('exit', () => {
      try {
        mod.exports.loadLazyModules?.();
        writeAtomic(cacheFile, script.createCachedData());
      } catch {
        // A read-only checkout: every start compiles, nothing else changes.
      }
    });
  }
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(p.dir);
  const wrapper = script.runInThisContext();
  wrapper.call(mod.exports, mod.exports, Module.createRequire(file), mod, file, p.dir);
  mod.loaded = true;
  return { exports: mod.exports, cacheUsed };
}

module.exports = { staleness, build, buildSync, load, paths, workflowStaleness, buildWorkflows };

// `node bin/bundle.js`: (re)build what is stale, the CLI and the workflow bundle (.ci/setup);
// `--force` rebuilds anyway, `--cli` only the CLI, `--root <dir>` another checkout's.
if (require.main === module) {
  const args = process.argv.slice(2);
  const force = args.includes('--force');
  const root = args.includes('--root') ? path.resolve(args[args.indexOf('--root') + 1]) : ROOT;
  const timed = async (file, why, fn) => {
    if (!why) return;
    const t = process.hrtime.bigint();
    const bytes = await fn();
    console.log(`[bundle] ${file}: ${(bytes / 1024).toFixed(0)} kB in ${(Number(process.hrtime.bigint() - t) / 1e6).toFixed(0)} ms (${why})`);
  };
  void (async () => {
    await timed(`${paths(root).dir}/{${BUNDLE},${WORKER_BUNDLE}}`, force ? 'forced' : staleness(root), () => build(root));
    if (!args.includes('--cli')) await timed(paths(root).workflows, force ? 'forced' : workflowStaleness(root), () => buildWorkflows(root));
  })().catch((e) => {
    console.error(`[bundle] ${e.message}`);
    process.exitCode = 1;
  });
}
