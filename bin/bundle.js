// The bundled CLI: cli/index.ts and everything it loads (the Temporal client, commander, the
// config schema) in one minified file, dist/bundle/pgshift.js, run with a V8 code cache beside it.
// A start then costs one file read and no compilation: ~0.15 s instead of 2–3 s through tsx
// (or ~0.8 s of compiled dist/, which resolves and compiles hundreds of files).
//
// Freshness: the manifest records every project file the bundle was built from (size, mtime,
// sha1) and node_modules/.package-lock.json (rewritten by every npm install). A changed size is
// stale at once; a changed mtime alone is checked by content, so a checkout that rewrites
// files with the same content costs one hash, not a rebuild. A stat per file (~60 files) is
// well under a millisecond's work per file.
//
// Plain CommonJS (no TypeScript): bin/pgshift loads it before anything is compiled.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const OUT_DIR = 'dist/bundle';
const BUNDLE = 'pgshift.js';
const MANIFEST = 'manifest.json';
/** Changes with the manifest layout or the build options below: an older bundle is stale. */
const FORMAT = 1;

const paths = (root = ROOT) => {
  const dir = path.join(root, OUT_DIR);
  return { dir, bundle: path.join(dir, BUNDLE), manifest: path.join(dir, MANIFEST) };
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
  const p = paths(root);
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(p.manifest, 'utf8'));
  } catch {
    return 'no bundle built yet';
  }
  if (manifest.format !== FORMAT) return 'bundle built by another version of bin/bundle.js';
  if (manifest.node !== process.versions.node) return `bundle built for Node ${manifest.node}`;
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
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/**
 * Build the bundle and its manifest (esbuild: a devDependency, so only in a checkout).
 * The worker and `release` (native bridge, webpack, pg) stay outside: cli/index.ts loads them
 * from the sources when it runs bundled. Returns the bundle's size in bytes.
 */
function build(root = ROOT) {
  const esbuild = require('esbuild');
  const p = paths(root);
  fs.mkdirSync(p.dir, { recursive: true });
  const result = esbuild.buildSync({
    absWorkingDir: root,
    entryPoints: ['cli/index.ts'],
    bundle: true,
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    format: 'cjs',
    minify: true,
    // Error classes keep their names (messages and instanceof-by-name checks in the SDK).
    keepNames: true,
    external: ['tsx'],
    define: { PGSHIFT_BUNDLE: 'true' },
    // A dynamic require (cli/index.ts requireUnbundled) is meant to stay one.
    logOverride: { 'indirect-require': 'silent' },
    metafile: true,
    write: false,
    logLevel: 'error',
  });
  const code = result.outputFiles[0].contents;
  const inputs = Object.keys(result.metafile.inputs)
    .filter((f) => !f.split('/').includes('node_modules'))
    .concat(EXTRA_INPUTS.filter((f) => fs.existsSync(path.join(root, f))))
    .map((f) => record(root, f));
  const bundleSha1 = sha1(code);
  // The bundle first, the manifest last: a reader that sees the new manifest sees the new bundle.
  writeAtomic(p.bundle, code);
  for (const f of fs.readdirSync(p.dir)) if (f.endsWith('.cache') && !f.includes(bundleSha1.slice(0, 12))) fs.rmSync(path.join(p.dir, f), { force: true });
  writeAtomic(p.manifest, JSON.stringify({ format: FORMAT, node: process.versions.node, bundleSha1, inputs }, null, 1));
  return code.length;
}

/**
 * Run the bundle as a CommonJS module compiled with V8's code cache (the way v8-compile-cache
 * does; Node 20 has no module.enableCompileCache). The cache file is named after the bundle's
 * hash, so a rebuilt bundle never meets an old cache; V8 rejects one made by another V8 or
 * with other flags. Missing or rejected, it is written when the process exits, once the
 * modules every command loads lazily are loaded too: one cache serves all commands.
 */
function load(root = ROOT) {
  const vm = require('node:vm');
  const Module = require('node:module');
  const p = paths(root);
  const manifest = JSON.parse(fs.readFileSync(p.manifest, 'utf8'));
  const source = fs.readFileSync(p.bundle, 'utf8');
  const cacheFile = path.join(p.dir, `${BUNDLE}.${manifest.bundleSha1.slice(0, 12)}.cache`);
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(Module.wrap(source), { filename: p.bundle, cachedData });
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
  const mod = new Module(p.bundle, module);
  mod.filename = p.bundle;
  mod.paths = Module._nodeModulePaths(p.dir);
  const wrapper = script.runInThisContext();
  wrapper.call(mod.exports, mod.exports, Module.createRequire(p.bundle), mod, p.bundle, p.dir);
  mod.loaded = true;
  return { exports: mod.exports, cacheUsed };
}

module.exports = { staleness, build, load, paths };

// `node bin/bundle.js`: (re)build when stale (.ci/setup); `--force` rebuilds anyway.
if (require.main === module) {
  const why = process.argv.includes('--force') ? 'forced' : staleness();
  if (why) {
    const t = process.hrtime.bigint();
    const bytes = build();
    console.log(`[bundle] ${paths().bundle}: ${(bytes / 1024).toFixed(0)} kB in ${(Number(process.hrtime.bigint() - t) / 1e6).toFixed(0)} ms (${why})`);
  }
}
