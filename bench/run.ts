// `npm run bench`: pgshift's full migration against the tools users reach for
// today, on the same two clusters in one run, for two data shapes:
//   compressible:   pgbench tables at --scale, --wide rows of wide TOASTed text/jsonb (docs),
//                   scale × 50,000 payments with a unique uuid index and an FK
//   incompressible: pgbench tables at --scale, --secrets rows of two 2 KB random-hex values
//                   (hashes, tokens, encrypted payloads: nothing LZ finds), scale × 10,000 payments
// Tools, each run --runs times (interleaved, the median reported):
//   pgshift through the CLI (`pgshift start --config F` → the workflow done), as a user runs it
//   pgshift in process (verification off; pglz; verification on; data only)
//   pg_dump -Fd -j 2 + pg_restore -j 2
//   pgcopydb clone --table-jobs 2 --index-jobs 2
//   a raw binary COPY TO STDOUT | COPY FROM STDIN pipe per table, 2 at a time
// Options: --shape compressible|incompressible|both (default both), --runs N (default 3),
//          --scale N (default 10), --wide N (default 20000), --secrets N (default 50000),
//          --only raw,pgshift-data,pgshift-cli,pgshift,pgshift-verify,pg_dump,pgcopydb,capture,cli (a subset; the table shows what ran),
//          --transactions N (pgbench backlog for change capture, default 150000: 600,000 changes),
//          --live-rate N --live-seconds N (live change-capture workload, default 300 tps for 20 s),
//          --timeline (every activity of the pgshift runs), --write (update bench/RESULTS.md).
// BENCH_CHUNK_MB overrides pgshift's largest chunk size (default: the config default, fullLoad.chunkMb).
// BENCH_LOG_MS=N: the destination logs statements slower than N ms (kept in .tmp/bench-destination.log); with
// BENCH_STATS=1 each with its backend's CPU (log_statement_stats): where the destination's time goes, statement by statement.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startMigration, waitForMigration, type ConfigInput, type MigrationStatus } from '../client';
import { ensureSearchAttributes } from '../lib/io/temporal';
import { parseConfig } from '../lib/io/config-load';
import { binDirFor, startCluster, type LocalCluster } from '../dev/postgres';
import { PROJECT_ROOT, startDevServer, type DevServer } from '../dev/temporal';
import { createWorker } from '../worker';
import { docsTableSql } from './data';
import { benchChangeCapture, renderCaptureResults } from './change-capture';
import { pgshiftCaptureConsumer } from './pgshift-capture';
import { cpuDelta, cpuSnapshot, postmasterPid, renderCpu, type CpuSnapshot } from './cpu';
import { analyseHistory, renderTimeline, type RunProfile } from './timeline';
import { measureCliStart, renderCliStart } from './cli-start';

const run = promisify(execFile);
const BIN = binDirFor(15);
const PASSWORD = 'bench-superuser';
const TASK_QUEUE = 'pgshift-bench';

type Shape = 'compressible' | 'incompressible';
const SHAPES: Shape[] = ['compressible', 'incompressible'];
/** The database holding a shape, on both clusters. */
const dbOf = (shape: Shape) => `bench_${shape}`;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
function argText(name: string): string | null {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : null;
}

interface Result {
  tool: string;
  seconds: number;
  /** Seconds of the data copy alone, where the tool tells. */
  copySeconds?: number;
  /** pgshift through the CLI: the workflow's own span (what the in-process client sees) and `pgshift start` alone. */
  workflowSeconds?: number;
  cliStartSeconds?: number;
  cpu?: CpuSnapshot;
  profile?: RunProfile;
  note?: string;
}

/** The median run of a tool (by seconds), with every run's seconds. */
interface Summary extends Result {
  runs: number[];
}

const uri = (c: LocalCluster, db: string) => `postgresql://postgres:${encodeURIComponent(PASSWORD)}@127.0.0.1:${c.port}/${db}`;
const pgEnv = { ...process.env, PGPASSWORD: PASSWORD, PATH: `${BIN}:${process.env.PATH}` };

async function sh(cmd: string, args: string[]): Promise<void> {
  await run(cmd, args, { env: pgEnv, maxBuffer: 64 << 20 });
}

async function inTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `pgshift-bench-${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

interface ShapeSize {
  scale: number;
  wide: number;
  secrets: number;
}

async function buildSource(src: LocalCluster, shape: Shape, size: ShapeSize): Promise<void> {
  const db = dbOf(shape);
  await src.sql(`CREATE DATABASE ${db}`);
  const { scale } = size;
  await sh(path.join(BIN, 'pgbench'), ['-i', '-q', '-s', String(scale), '--foreign-keys', '-h', '127.0.0.1', '-p', String(src.port), '-U', 'postgres', db]);
  const wideTable =
    shape === 'compressible'
      ? docsTableSql(size.wide)
      : // 64 random md5s = 2,048 hex characters a value: LZ (pglz, lz4) finds nothing to shorten.
        `CREATE TABLE secrets (id bigint PRIMARY KEY, token text NOT NULL, payload text NOT NULL);
         INSERT INTO secrets
           SELECT g,
                  (SELECT string_agg(md5(g::text || ':' || i::text || random()::text), '') FROM generate_series(1, 64) i),
                  (SELECT string_agg(md5(i::text || ':' || g::text || random()::text), '') FROM generate_series(1, 64) i)
             FROM generate_series(1, ${size.secrets}) g;`;
  const payments = shape === 'compressible' ? scale * 50_000 : scale * 10_000;
  await src.sql(
    `${wideTable}
     CREATE TABLE payments (
       id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
       aid int NOT NULL REFERENCES pgbench_accounts (aid),
       ref uuid NOT NULL,
       amount numeric(12,2) NOT NULL,
       at timestamptz NOT NULL
     );
     INSERT INTO payments (aid, ref, amount, at)
       SELECT 1 + (g::bigint * 7919) % (${scale} * 100000), md5(g::text)::uuid, (g % 100000) / 100.0, '2026-01-01'::timestamptz + g * interval '1 second'
         FROM generate_series(1, ${payments}) g;
     CREATE UNIQUE INDEX payments_ref ON payments (ref);
     CREATE INDEX payments_aid_at ON payments (aid, at);`,
    db,
  );
  await src.sql('VACUUM ANALYZE', db);
}

async function resetDestination(dst: LocalCluster, db: string): Promise<void> {
  await dst.sql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await dst.sql(`CREATE DATABASE ${db}`);
  await dst.sql('CHECKPOINT');
}

interface PgshiftRun {
  verify: boolean;
  toastCompression: 'lz4' | 'server-default';
  /** false: tables pre-created without keys or indexes, data only (the raw pipe's conditions). */
  schema: boolean;
}

interface Env {
  server: DevServer;
  src: LocalCluster;
  dst: LocalCluster;
  db: string;
}

let migrations = 0;

function benchConfig(env: Env, run: PgshiftRun): ConfigInput {
  const endpoint = (c: LocalCluster) => ({ host: '127.0.0.1', port: c.port, database: env.db, user: 'postgres', passwordEnv: 'BENCH_PASSWORD' });
  return {
    name: `bench_${process.pid}_${++migrations}`,
    source: endpoint(env.src),
    destination: endpoint(env.dst),
    mode: { schema: run.schema, full: true, incremental: false },
    objects: { schemas: ['public'] },
    parallelism: { tables: 2, indexes: 2 },
    // The default chunk size (fullLoad.chunkMb) unless BENCH_CHUNK_MB says otherwise.
    fullLoad: { ...(process.env.BENCH_CHUNK_MB ? { chunkMb: Number(process.env.BENCH_CHUNK_MB) } : {}), toastCompression: run.toastCompression },
    verification: { full: run.verify, schema: run.verify, incremental: false },
    taskQueue: TASK_QUEUE,
    acknowledgeWarnings: ['ddl-capture', 'wal-retention', 'replica-role', 'triggers-and-rules', 'replica-identity'],
  };
}

function describeRun(run: PgshiftRun): string {
  return [
    run.schema ? `verification ${run.verify ? 'on (schema + every row)' : 'off'}` : 'data only (tables pre-created, mode.schema false)',
    run.toastCompression === 'lz4' ? '' : 'toastCompression: server-default (pglz)',
  ]
    .filter(Boolean)
    .join(', ');
}

/** What a finished pgshift migration tells: it succeeded, its full-load span, its activities. */
async function finished(client: Client, final: MigrationStatus): Promise<{ copySeconds: number; profile: RunProfile }> {
  if (final.state.phase !== 'done') throw new Error(`pgshift ended in ${final.state.phase}`);
  if ((final.state.dataVerification?.inconsistent ?? 0) > 0 || (final.state.schema.verification?.differences.length ?? 0) > 0)
    throw new Error('pgshift verification found differences');
  const f = final.state.fullLoad!;
  const history = await client.workflow.getHandle(final.workflowId).fetchHistory();
  return { copySeconds: (Date.parse(f.finishedAt!) - Date.parse(f.startedAt)) / 1000, profile: analyseHistory(history) };
}

/** pgshift started and awaited by the bench's own Temporal client (no CLI start-up). */
async function pgshiftInProcess(env: Env, run: PgshiftRun): Promise<Result> {
  if (!run.schema) await preCreateTables(env);
  process.env.BENCH_PASSWORD = PASSWORD;
  const config = parseConfig(benchConfig(env, run));
  const connection = await Connection.connect({ address: env.server.address });
  const client = new Client({ connection });
  try {
    let final: MigrationStatus | null = null;
    const seconds = await timed(async () => {
      await startMigration(client, config);
      final = await waitForMigration(client, config.name);
    });
    const { copySeconds, profile } = await finished(client, final!);
    return { tool: `pgshift, ${describeRun(run)}`, seconds, copySeconds, profile };
  } finally {
    await connection.close();
  }
}

const PGSHIFT = path.join(PROJECT_ROOT, 'bin', 'pgshift');

/** Run the pgshift CLI as a user would (the checkout's bin/pgshift against the bench's Temporal server). */
function cli(env: Env, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(PGSHIFT, [...args, '--address', env.server.address], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TEMPORAL_ADDRESS: env.server.address },
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`pgshift ${args[0]} exited ${code}: ${err.trim()}`))));
  });
}

/**
 * pgshift end to end as a user runs it: `pgshift start --config F`, then the
 * migration done. The end is taken from the workflow's result (a long poll, so
 * no polling interval is added), then `pgshift status NAME --json` is asked once,
 * as a user would, to confirm what the CLI shows.
 */
async function pgshiftCli(env: Env): Promise<Result> {
  const run: PgshiftRun = { verify: false, toastCompression: 'lz4', schema: true };
  process.env.BENCH_PASSWORD = PASSWORD;
  const input = benchConfig(env, run);
  const connection = await Connection.connect({ address: env.server.address });
  const client = new Client({ connection });
  return inTempDir('cli', async (dir) => {
    try {
      const file = path.join(dir, 'migration.json');
      writeFileSync(file, JSON.stringify(input, null, 2));
      let cliStartSeconds = 0;
      let final: MigrationStatus | null = null;
      const seconds = await timed(async () => {
        cliStartSeconds = await timed(async () => void (await cli(env, ['start', '--config', file])));
        final = await waitForMigration(client, input.name);
      });
      const status = JSON.parse(await cli(env, ['status', input.name, '--json'])) as MigrationStatus;
      if (status.state.phase !== 'done') throw new Error(`pgshift status says ${status.state.phase}, the workflow ended done`);
      const { copySeconds, profile } = await finished(client, final!);
      return {
        tool: 'pgshift through the CLI (start → done), verification off',
        seconds,
        copySeconds,
        cliStartSeconds,
        workflowSeconds: profile.workflowSeconds,
        profile,
      };
    } finally {
      await connection.close();
    }
  });
}

async function dumpRestore(env: Env): Promise<Result> {
  return inTempDir('dump', async (parent) => {
    const dir = path.join(parent, 'dump'); // pg_dump -Fd creates it
    const seconds = await timed(async () => {
      await sh(path.join(BIN, 'pg_dump'), ['-Fd', '-j', '2', '-f', dir, '-d', uri(env.src, env.db)]);
      await sh(path.join(BIN, 'pg_restore'), ['-j', '2', '-d', uri(env.dst, env.db), dir]);
    });
    return { tool: 'pg_dump -Fd -j 2 + pg_restore -j 2', seconds };
  });
}

async function pgcopydb(env: Env): Promise<Result> {
  return inTempDir('pgcopydb', async (dir) => {
    const seconds = await timed(() =>
      sh('pgcopydb', [
        'clone',
        '--source',
        uri(env.src, env.db),
        '--target',
        uri(env.dst, env.db),
        '--table-jobs',
        '2',
        '--index-jobs',
        '2',
        '--dir',
        dir,
        '--no-owner',
        '--no-acl',
      ]),
    );
    return { tool: 'pgcopydb clone --table-jobs 2 --index-jobs 2', seconds };
  });
}

/** The source's tables on the destination, without keys, indexes or constraints (pg_dump's pre-data section). */
async function preCreateTables(env: Env): Promise<void> {
  await inTempDir('ddl', async (dir) => {
    const ddl = path.join(dir, 'pre-data.sql');
    await sh(path.join(BIN, 'pg_dump'), ['--section=pre-data', '-f', ddl, '-d', uri(env.src, env.db)]);
    await sh(path.join(BIN, 'psql'), ['-q', '-v', 'ON_ERROR_STOP=1', '-f', ddl, '-d', uri(env.dst, env.db)]);
  });
}

/** Tables only (no keys or indexes, as during pgshift's full load), then one binary COPY pipe per table, 2 at a time. */
async function rawPipe(env: Env, tables: string[], lz4: boolean): Promise<Result> {
  await preCreateTables(env);
  const psql = path.join(BIN, 'psql');
  const pipe = (t: string) =>
    new Promise<void>((resolve, reject) => {
      const p = spawn(
        'bash',
        [
          '-o',
          'pipefail',
          '-c',
          `${psql} -X -d "$SRC" -c "COPY ${t} TO STDOUT (FORMAT binary)" | ${psql} -X -q -d "$DST" -c "COPY ${t} FROM STDIN (FORMAT binary)"`,
        ],
        {
          env: { ...pgEnv, SRC: uri(env.src, env.db), DST: uri(env.dst, env.db), PGOPTIONS: lz4 ? '-c default_toast_compression=lz4' : '' },
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`COPY pipe of ${t} exited ${code}`))));
    });
  const queue = [...tables];
  const seconds = await timed(async () => {
    await Promise.all(
      [0, 1].map(async () => {
        for (let t = queue.shift(); t; t = queue.shift()) await pipe(t);
      }),
    );
  });
  return { tool: `raw binary COPY pipe, data only, 2 at a time (TOAST ${lz4 ? 'lz4' : 'pglz'})`, seconds, copySeconds: seconds };
}

interface TableStats {
  t: string;
  rows: string;
  bytes: string;
}

interface ShapeResults {
  shape: Shape;
  stats: TableStats[];
  results: Summary[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The run whose seconds are the median (the lower middle one for an even count), with every run's seconds. */
function summarise(runs: Result[]): Summary {
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)];
  return {
    ...mid,
    seconds: median(runs.map((r) => r.seconds)),
    ...(mid.copySeconds !== undefined ? { copySeconds: median(runs.map((r) => r.copySeconds!)) } : {}),
    ...(mid.cliStartSeconds !== undefined ? { cliStartSeconds: median(runs.map((r) => r.cliStartSeconds!)) } : {}),
    ...(mid.workflowSeconds !== undefined ? { workflowSeconds: median(runs.map((r) => r.workflowSeconds!)) } : {}),
    runs: runs.map((r) => r.seconds),
  };
}

const loadavg = () => os.loadavg().map((l) => l.toFixed(2));

async function benchShape(
  shape: Shape,
  ctx: { server: DevServer; src: LocalCluster; dst: LocalCluster; runs: number; want: (tool: string) => boolean; pids: Parameters<typeof cpuSnapshot>[0] },
): Promise<ShapeResults> {
  const { src, dst, server, runs, want } = ctx;
  const db = dbOf(shape);
  const env: Env = { server, src, dst, db };
  const stats = await src.sql<TableStats>(
    `SELECT format('%I.%I', schemaname, relname) AS t, n_live_tup::text AS rows, pg_table_size(relid)::text AS bytes
       FROM pg_stat_user_tables ORDER BY pg_table_size(relid) DESC`,
    db,
  );
  console.log(`▶ shape ${shape} (database ${db})`);
  for (const s of stats) console.log(`  ${s.t}: ${Number(s.rows).toLocaleString('en-US')} rows, ${(Number(s.bytes) / 1e6).toFixed(0)} MB`);
  // Warm the source's cache so the first timed run is not the only one reading from disk.
  for (const s of stats) await src.sql(`COPY ${s.t} TO '/dev/null' (FORMAT binary)`, db);

  const tables = stats.map((s) => s.t);
  const tools: { id: string; label: string; fn: () => Promise<Result> }[] = [
    { id: 'raw', label: 'raw binary COPY pipe (pglz)', fn: () => rawPipe(env, tables, false) },
    { id: 'raw', label: 'raw binary COPY pipe (lz4)', fn: () => rawPipe(env, tables, true) },
    { id: 'pgshift-data', label: 'pgshift, data only (lz4)', fn: () => pgshiftInProcess(env, { verify: false, toastCompression: 'lz4', schema: false }) },
    {
      id: 'pgshift-data',
      label: 'pgshift, data only (pglz)',
      fn: () => pgshiftInProcess(env, { verify: false, toastCompression: 'server-default', schema: false }),
    },
    { id: 'pgshift-cli', label: 'pgshift through the CLI, verification off', fn: () => pgshiftCli(env) },
    { id: 'pgshift', label: 'pgshift in process, verification off', fn: () => pgshiftInProcess(env, { verify: false, toastCompression: 'lz4', schema: true }) },
    {
      id: 'pgshift',
      label: 'pgshift in process, verification off, pglz',
      fn: () => pgshiftInProcess(env, { verify: false, toastCompression: 'server-default', schema: true }),
    },
    {
      id: 'pgshift-verify',
      label: 'pgshift in process, verification on',
      fn: () => pgshiftInProcess(env, { verify: true, toastCompression: 'lz4', schema: true }),
    },
    { id: 'pg_dump', label: 'pg_dump + pg_restore', fn: () => dumpRestore(env) },
    { id: 'pgcopydb', label: 'pgcopydb clone', fn: () => pgcopydb(env) },
  ].filter((t) => want(t.id));

  // Runs interleaved (every tool once, then again), so a load swing on the shared machine hits all tools alike.
  const byTool = tools.map(() => [] as Result[]);
  for (let i = 0; i < runs; i++) {
    for (const [k, t] of tools.entries()) {
      console.log(`▶ ${shape}: ${t.label}${runs > 1 ? ` (run ${i + 1}/${runs})` : ''} — load ${loadavg().join(' ')}`);
      await resetDestination(dst, db);
      const before = cpuSnapshot(ctx.pids);
      const r = await t.fn();
      r.cpu = cpuDelta(before, cpuSnapshot(ctx.pids));
      const extra = [
        r.copySeconds ? `data copy ${r.copySeconds.toFixed(1)} s` : '',
        r.cliStartSeconds !== undefined ? `pgshift start ${r.cliStartSeconds.toFixed(2)} s, workflow ${r.workflowSeconds!.toFixed(1)} s` : '',
      ].filter(Boolean);
      console.log(`  ${r.seconds.toFixed(1)} s${extra.length ? ` (${extra.join(', ')})` : ''}`);
      console.log(`  CPU: ${renderCpu(r.cpu, r.seconds)}`);
      if (r.profile) console.log(renderTimeline(r.profile, process.argv.includes('--timeline')));
      byTool[k].push(r);
    }
  }
  return { shape, stats, results: byTool.map(summarise) };
}

async function main() {
  const scale = arg('scale', 10);
  const size: ShapeSize = { scale, wide: arg('wide', 20_000), secrets: arg('secrets', 50_000) };
  const runs = Math.max(1, arg('runs', 3));
  const shapeArg = argText('shape') ?? 'both';
  if (shapeArg !== 'both' && !SHAPES.includes(shapeArg as Shape)) throw new Error(`--shape ${shapeArg}: expected compressible, incompressible or both`);
  const shapes = shapeArg === 'both' ? SHAPES : [shapeArg as Shape];
  const only = argText('only')?.split(',') ?? null;
  const want = (tool: string) => !only || only.includes(tool);

  Runtime.install({ logger: new DefaultLogger('WARN') });
  const settings = { max_wal_size: '4GB', shared_buffers: '512MB', maintenance_work_mem: '256MB', checkpoint_timeout: '30min' };
  console.log(`▶ starting PostgreSQL 15 source and destination, Temporal dev server (shapes ${shapes.join(', ')}, scale ${scale}, ${runs} run(s) a tool)`);
  const [src, dst, server] = await Promise.all([
    startCluster({ version: 15, label: 'bench-src', password: PASSWORD, settings }),
    // BENCH_LOG_MS: the destination logs statements slower than this (its server.log is kept in .tmp/ at the end).
    startCluster({
      version: 15,
      label: 'bench-dst',
      password: PASSWORD,
      settings: process.env.BENCH_LOG_MS
        ? { ...settings, log_min_duration_statement: `${process.env.BENCH_LOG_MS}ms`, ...(process.env.BENCH_STATS ? { log_statement_stats: 'on' } : {}) }
        : settings,
    }),
    startDevServer({ ui: false }),
  ]);
  const { worker, connection } = await createWorker({ address: server.address, taskQueue: TASK_QUEUE });
  const running = worker.run();
  try {
    const admin = new Client({ connection: await Connection.connect({ address: server.address }) });
    await ensureSearchAttributes(admin);
    await admin.connection.close();

    // First, while the machine is quiet: only the Temporal server is up.
    let cliStart = '';
    if (want('cli')) {
      console.log('▶ CLI start time');
      cliStart = renderCliStart(await measureCliStart(server.address));
      console.log(cliStart);
      if (only?.every((t) => t === 'cli')) return;
    }

    console.log('▶ building the benchmark databases');
    await Promise.all(shapes.map((s) => buildSource(src, s, size)));
    const pids = { source: postmasterPid(src.dataDir), destination: postmasterPid(dst.dataDir), temporal: server.pid };
    const perShape: ShapeResults[] = [];
    for (const shape of shapes) perShape.push(await benchShape(shape, { server, src, dst, runs, want, pids }));

    // Last: it adds a key to pgbench_history and leaves WAL behind.
    let capture = '';
    if (want('capture')) {
      const db = dbOf(shapes[0]);
      console.log('▶ change capture: decode limit, native logical replication, pgshift apply');
      const transactions = arg('transactions', 150_000);
      const pgshift = pgshiftCaptureConsumer(src, dst, PASSWORD, db);
      capture = renderCaptureResults(
        await benchChangeCapture({
          src,
          dst,
          password: PASSWORD,
          database: db,
          transactions,
          liveRate: arg('live-rate', 300),
          liveSeconds: arg('live-seconds', 20),
          pgshift,
        }),
      );
      console.log(capture);
    }
    // A subset without any shape's tool (capture alone) prints no table.
    if (!perShape.some((r) => r.results.length)) return;

    const command = `npm run bench -- ${process.argv
      .slice(2)
      .filter((a) => a !== '--write')
      .join(' ')}`.trim();
    const table = renderResults(perShape, size, runs, command) + (cliStart ? `\n\n${cliStart}` : '');
    console.log('\n' + table);
    if (process.argv.includes('--write')) {
      const file = path.join(PROJECT_ROOT, 'bench', 'RESULTS.md');
      // Without a capture run, the change-capture sections of the current file stay as they are.
      const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
      const kept = capture ? capture : old.includes('\n### Change capture') ? old.slice(old.indexOf('\n### Change capture') + 1).trimEnd() : '';
      writeFileSync(file, table + (kept ? `\n\n${kept}` : '') + '\n');
      console.log('written to bench/RESULTS.md');
    }
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await connection.close();
    if (process.env.BENCH_LOG_MS) writeFileSync(path.join(PROJECT_ROOT, '.tmp', 'bench-destination.log'), readFileSync(path.join(dst.dataDir, 'server.log')));
    await Promise.all([src.stop(), dst.stop(), server.stop()]);
  }
}

const SHAPE_TEXT: Record<Shape, (s: ShapeSize) => string> = {
  compressible: (s) =>
    `pgbench scale ${s.scale} with foreign keys, ${s.wide.toLocaleString('en-US')} wide TOASTed text/jsonb rows that compress (docs), ${(s.scale * 50_000).toLocaleString('en-US')} payments with a unique uuid index and an FK`,
  incompressible: (s) =>
    `pgbench scale ${s.scale} with foreign keys, ${s.secrets.toLocaleString('en-US')} rows of two 2 KB random-hex text values that do not compress (secrets), ${(s.scale * 10_000).toLocaleString('en-US')} payments with a unique uuid index and an FK`,
};

function renderShape(r: ShapeResults, size: ShapeSize, runs: number): string[] {
  const { results, stats } = r;
  const rows = stats.reduce((a, s) => a + Number(s.rows), 0);
  const mb = stats.reduce((a, s) => a + Number(s.bytes), 0) / 1e6;
  const find = (prefix: string, pglz = false) => results.find((x) => x.tool.startsWith(prefix) && x.tool.includes('pglz') === pglz);
  const cliRun = find('pgshift through the CLI');
  const inProcess = find('pgshift, verification off');
  const reference = cliRun ?? inProcess;
  const lines = [`## Shape: ${r.shape}`, '', `Data: ${SHAPE_TEXT[r.shape](size)}: ${rows.toLocaleString('en-US')} rows, ${mb.toFixed(0)} MB of tables.`, ''];
  const versus = (other: Summary | undefined) => (other && reference ? `${(reference.seconds / other.seconds).toFixed(2)}×` : 'not run');
  if (reference)
    lines.push(
      `Summary: pgshift ${cliRun ? 'end to end through the CLI' : 'in process'} (schema, data, keys, indexes, FKs, sequences, ANALYZE; verification off) takes ` +
        `${versus(find('pgcopydb'))} the time of pgcopydb and ${versus(find('pg_dump'))} that of pg_dump + pg_restore (median of ${runs})` +
        (cliRun && inProcess && find('pgcopydb') ? `; in process (no CLI start) ${(inProcess.seconds / find('pgcopydb')!.seconds).toFixed(2)}×.` : '.'),
      '',
    );
  lines.push(`| tool | seconds (median of ${runs}) | runs | rows/s | MB/s | time vs pgcopydb |`, '|---|---:|---|---:|---:|---:|');
  const pgcopydbRun = find('pgcopydb');
  for (const x of results) {
    const ratio = x.tool.includes('data only') ? 'n/a (data only)' : pgcopydbRun ? `${(x.seconds / pgcopydbRun.seconds).toFixed(2)}×` : '—';
    lines.push(
      `| ${x.tool} | ${x.seconds.toFixed(1)} | ${x.runs.map((s) => s.toFixed(1)).join(', ')} | ${Math.round(rows / x.seconds).toLocaleString('en-US')} | ${(mb / x.seconds).toFixed(1)} | ${ratio} |`,
    );
  }
  if (cliRun)
    lines.push(
      '',
      `Through the CLI: \`pgshift start\` took ${cliRun.cliStartSeconds!.toFixed(2)} s (process start → exit; it returns once the workflow is started), ` +
        `the workflow itself ${cliRun.workflowSeconds!.toFixed(1)} s (start → close, what the in-process client sees).`,
    );
  const copyRatio = (p: Summary | undefined, raw: Summary | undefined) =>
    p && raw
      ? `pgshift's full-load phase ${p.copySeconds!.toFixed(1)} s vs the raw pipe's ${raw.seconds.toFixed(1)} s: ${((raw.seconds / p.copySeconds!) * 100).toFixed(0)} % of the raw pipe's rate`
      : 'not run';
  lines.push(
    '',
    'Data copy alone (target: at least 90 % of the raw pipe), like for like:',
    `- TOAST lz4 (pgshift's default): ${copyRatio(find('pgshift, data only'), find('raw'))}.`,
    `- TOAST pglz (toastCompression: server-default): ${copyRatio(find('pgshift, data only', true), find('raw', true))}.`,
    '',
    'CPU of the median run (seconds, share of its wall time; 2 cores = 200 %):',
  );
  for (const x of results) if (x.cpu) lines.push(`- ${x.tool}: ${renderCpu(x.cpu, x.seconds)}`);
  if (reference?.profile)
    lines.push('', `pgshift's run (${reference.tool}), from its workflow history:`, renderTimeline(reference.profile, false).replace(/^ {2}/gm, ''));
  return lines;
}

function renderResults(perShape: ShapeResults[], size: ShapeSize, runs: number, command: string): string {
  const lines = [
    '# pgshift benchmark',
    '',
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}, Node ${process.version}; load average at the end ${loadavg().join(' ')} (shared with other agents).`,
    `Both clusters PostgreSQL 15 on the same machine (shared_buffers 512MB, max_wal_size 4GB); the Temporal dev server and the pgshift worker (in the bench process) on the same 2 cores.`,
    `Run: ${new Date().toISOString().slice(0, 10)}, \`${command}\`. Every tool ran ${runs} time(s), interleaved; the tables show the median.`,
    '',
  ];
  for (const r of perShape) lines.push(...renderShape(r, size, runs), '');
  lines.push(
    'Notes:',
    '- Loading wide values is dominated by TOAST compression on the destination; pgshift compresses with lz4 during',
    '  the load (fullLoad.toastCompression), the other tools use the server default (pglz). The pglz rows compare like',
    '  for like.',
    "- pgshift builds a table's keys and indexes, and the FKs between finished tables, while the other tables still copy",
    '  (as pgcopydb does), copying the tables with the most index work first; the phases after the load find little left.',
    '- A table copied whole is loaded with COPY FREEZE (as pgcopydb does): its builds and FK checks read frozen,',
    "  all-visible pages; FKs are added NOT VALID and then validated, beside the table's ANALYZE.",
    "- pgshift's data passes through the worker, which forwards the source's CopyData messages as they arrived (it",
    '  walks message headers only).',
    '- Two cores run both servers, the Temporal dev server and the worker, shared with other agents: repeated runs vary;',
    '  compare the ratios of one run.',
  );
  return lines.join('\n');
}

main().catch((e) => {
  console.error(`bench failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
});
