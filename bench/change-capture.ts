// Change capture in `npm run bench`: one pgbench backlog, consumed in turn by
//   - the decode limit: the source's walsender streaming the backlog to a
//     consumer that discards it (pg_recvlogical -P pgoutput -f /dev/null); no
//     consumer of one slot can be faster;
//   - native logical replication (CREATE SUBSCRIPTION … copy_data = false);
//   - pgshift's apply (when given), each into its own destination database.
// Every consumer's slot is made before the workload, so all three see exactly
// the same changes. Catch-up: from the consumer's start until a marker row,
// committed after the workload, is visible on its destination.
// Then live lag: pgbench at a fixed rate while probe rows carry their commit
// time; lag = when the probe shows up on the destination − when it committed
// (one clock: both ends are read by this process).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client } from 'pg';
import type { LocalCluster } from '../dev/postgres';
import { cpuDelta, cpuSnapshot, postmasterPid, type CpuSnapshot } from './cpu';

const run = promisify(execFile);

export interface CaptureBenchOptions {
  src: LocalCluster;
  dst: LocalCluster;
  /** Superuser password of both clusters (the tools connect over TCP). */
  password: string;
  /** Database on the source holding the pgbench tables. */
  database: string;
  /** pgbench transactions in the backlog. */
  transactions: number;
  /** pgbench rate (transactions/s) of the live phase, and its length. */
  liveRate: number;
  liveSeconds: number;
  /**
   * pgshift as a consumer: prepare its slot before the workload (`prepare`),
   * then `catchUp` applies into `database` until `done()` says the marker
   * arrived; `live` runs the apply while `during` runs, returning its peak RSS.
   */
  pgshift?: {
    prepare(database: string): Promise<void>;
    consume(database: string, until: () => Promise<boolean>): Promise<{ peakRssMb: number; rounds: number }>;
  };
}

export interface CaptureRate {
  consumer: string;
  changes: number;
  seconds: number;
  changesPerSecond: number;
  /** CPU seconds of each party during the catch-up (children: pg_recvlogical). */
  cpu: CpuSnapshot;
  note?: string;
}

export interface CaptureBenchResult {
  backlogChanges: number;
  backlogMb: number;
  rates: CaptureRate[];
  live: { consumer: string; p50: number; p99: number; max: number; drainSeconds: number }[];
}

const PUBLICATION = 'bench_pub';
const MARKER = 'bench_marker';
/** The decode limit is measured first and last (the faster counts): a bound no consumer beats, whatever the machine did meanwhile. */
const DECODE_SLOTS = ['bench_decode', 'bench_decode_last'];
const BENCH_TABLES = ['pgbench_branches', 'pgbench_tellers', 'pgbench_accounts', 'pgbench_history'];

async function timed(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** Seconds and CPU per party of one catch-up. */
async function measured(src: LocalCluster, dst: LocalCluster, fn: () => Promise<void>): Promise<{ seconds: number; cpu: CpuSnapshot }> {
  const pids = { source: postmasterPid(src.dataDir), destination: postmasterPid(dst.dataDir), temporal: 0 };
  const before = cpuSnapshot(pids);
  const seconds = await timed(fn);
  return { seconds, cpu: cpuDelta(before, cpuSnapshot(pids)) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(20);
  }
}

export async function benchChangeCapture(o: CaptureBenchOptions): Promise<CaptureBenchResult> {
  const { src, dst, database: db } = o;
  const env = { ...process.env, PGPASSWORD: o.password, PATH: `${src.binDir}:${process.env.PATH}` };
  const conn = (c: LocalCluster, database: string) => `host=127.0.0.1 port=${c.port} user=postgres dbname=${database}`;
  const pgbench = (args: string[]) =>
    run(path.join(src.binDir, 'pgbench'), [...args, '-h', '127.0.0.1', '-p', String(src.port), '-U', 'postgres', db], { env, maxBuffer: 64 << 20 });

  // The marker table and a publication of the bench's tables (not pgshift's control tables on the
  // source, which only pgshift's own publication carries); the destinations get the same tables, keys included.
  await src.sql(`CREATE TABLE IF NOT EXISTS ${MARKER} (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`, db);
  await src.sql(`ALTER TABLE pgbench_history ADD COLUMN IF NOT EXISTS hid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`, db);
  await src.sql(`DROP PUBLICATION IF EXISTS ${PUBLICATION}; CREATE PUBLICATION ${PUBLICATION} FOR TABLE ${BENCH_TABLES.join(', ')}, ${MARKER}`, db);
  const schema = (
    await run(path.join(src.binDir, 'pg_dump'), ['--schema-only', '--no-publications', '--no-subscriptions', '-d', conn(src, db)], { env, maxBuffer: 64 << 20 })
  ).stdout
    // psql meta-commands (\restrict …) are not SQL
    .replace(/^\\.*$/gm, '');
  const consumers = ['native', ...(o.pgshift ? ['pgshift'] : [])];
  for (const c of consumers) {
    await dst.sql(`DROP DATABASE IF EXISTS bench_${c} WITH (FORCE)`);
    await dst.sql(`CREATE DATABASE bench_${c}`);
    await dst.sql(schema, `bench_${c}`);
    // The destination starts from the source's rows (as after a full load): copy them table by table.
    for (const t of BENCH_TABLES) {
      await run(
        'sh',
        [
          '-c',
          `psql -qAt -d "${conn(src, db)}" -c "COPY ${t} TO STDOUT (FORMAT binary)" | psql -qAt -d "${conn(dst, `bench_${c}`)}" -c "COPY ${t} FROM STDIN (FORMAT binary)"`,
        ],
        { env, maxBuffer: 1 << 20 },
      );
    }
  }

  // Slots first, then the backlog.
  for (const slot of DECODE_SLOTS) await src.sql(`SELECT pg_create_logical_replication_slot('${slot}', 'pgoutput')`, db);
  await dst.sql(
    `CREATE SUBSCRIPTION bench_native CONNECTION '${conn(src, db)} password=${o.password}' PUBLICATION ${PUBLICATION} WITH (copy_data = false, enabled = false, slot_name = 'bench_native')`,
    'bench_native',
  );
  await o.pgshift?.prepare('bench_pgshift');
  const [{ lsn: startLsn }] = await src.sql<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn', db);
  // No autovacuum of the bench tables while the consumers run (it would load the machine during one of them only).
  for (const t of BENCH_TABLES) await src.sql(`ALTER TABLE ${t} SET (autovacuum_enabled = false)`, db);
  await pgbench(['-n', '-c', '2', '-j', '2', '-t', String(Math.ceil(o.transactions / 2))]);
  // pg_recvlogical stops at the first record past --endpos: end the backlog before the marker, so that
  // record is there at once (at the very end of the WAL it would wait for a keepalive instead).
  const [{ lsn: backlogEnd }] = await src.sql<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn', db);
  await src.sql(`INSERT INTO ${MARKER} (id) VALUES (1)`, db);
  const [{ mb }] = await src.sql<{ mb: string }>(`SELECT (pg_current_wal_lsn() - '${startLsn}'::pg_lsn) / 1e6 AS mb`, db);
  // tpcb-like: three UPDATEs and one INSERT per transaction, plus the marker.
  const changes = 4 * 2 * Math.ceil(o.transactions / 2) + 1;
  // The backlog's dirty pages written out before any consumer starts.
  await src.sql('CHECKPOINT', db);
  const rates: CaptureRate[] = [];
  const rate = (consumer: string, m: { seconds: number; cpu: CpuSnapshot }, note?: string) =>
    rates.push({ consumer, changes, seconds: m.seconds, changesPerSecond: changes / m.seconds, cpu: m.cpu, note });

  const decode = (slot: string) =>
    measured(src, dst, async () => {
      await run(
        path.join(src.binDir, 'pg_recvlogical'),
        [
          '-d',
          conn(src, db),
          '-S',
          slot,
          '--start',
          `--endpos=${backlogEnd}`,
          '-P',
          'pgoutput',
          '-o',
          'proto_version=1',
          '-o',
          `publication_names=${PUBLICATION}`,
          '-f',
          '/dev/null',
          '--no-loop',
        ],
        { env },
      );
    });
  const decodeFirst = await decode(DECODE_SLOTS[0]);

  // Polled every 20 ms on one kept session per database: a new connection per poll (password
  // authentication, a backend started) cost the bench ~20 % of a core, taken from the consumer measured.
  const watchers = new Map<string, Client>();
  const watch = async (database: string, text: string): Promise<unknown[]> => {
    let c = watchers.get(database);
    if (!c) watchers.set(database, (c = await dst.connect(database)));
    return (await c.query(text)).rows;
  };
  const markerOn = (database: string) => async () => (await watch(database, `SELECT 1 FROM ${MARKER} LIMIT 1`)).length > 0;
  const native = await measured(src, dst, async () => {
    await dst.sql('ALTER SUBSCRIPTION bench_native ENABLE', 'bench_native');
    await waitFor('the marker on the native subscriber', markerOn('bench_native'), 30 * 60_000);
  });
  let pgshift: { seconds: number; cpu: CpuSnapshot } | null = null;
  let peak = 0;
  if (o.pgshift) {
    pgshift = await measured(src, dst, async () => {
      peak = (await o.pgshift!.consume('bench_pgshift', markerOn('bench_pgshift'))).peakRssMb;
    });
  }
  const decodeLast = await decode(DECODE_SLOTS[1]);
  rate(
    'decode limit (pg_recvlogical → /dev/null)',
    decodeFirst.seconds <= decodeLast.seconds ? decodeFirst : decodeLast,
    `faster of two: ${decodeFirst.seconds.toFixed(2)} s first, ${decodeLast.seconds.toFixed(2)} s last`,
  );
  rate('native logical replication', native, 'one destination transaction per source transaction');
  if (pgshift) rate('pgshift apply', pgshift, `worker peak RSS ${peak.toFixed(0)} MB`);

  // Live: one consumer at a time follows pgbench at a fixed rate; probes every 100 ms.
  const live: CaptureBenchResult['live'] = [];
  let probe = 1;
  const arrived = (database: string, id: number) => async () => (await watch(database, `SELECT 1 FROM ${MARKER} WHERE id = ${id}`)).length > 0;
  const liveLag = async (consumer: string, database: string) => {
    const lags: number[] = [];
    // Following already: a first probe arrived (a consumer's start-up is not live lag).
    const warm = ++probe;
    await src.sql(`INSERT INTO ${MARKER} (id) VALUES (${warm})`, db);
    await waitFor(`warm-up probe on ${consumer}`, arrived(database, warm), 120_000);
    const workload = pgbench(['-n', '-c', '2', '-j', '2', '-R', String(o.liveRate), '-T', String(o.liveSeconds)]);
    const probing = (async () => {
      const end = Date.now() + o.liveSeconds * 1000;
      while (Date.now() < end) {
        const id = ++probe;
        await src.sql(`INSERT INTO ${MARKER} (id) VALUES (${id})`, db);
        const committed = Date.now();
        await waitFor(`probe ${id} on ${consumer}`, arrived(database, id), 120_000);
        lags.push((Date.now() - committed) / 1000);
        await sleep(100);
      }
    })();
    await Promise.all([workload, probing]);
    const drain = await timed(async () => {
      const id = ++probe;
      await src.sql(`INSERT INTO ${MARKER} (id) VALUES (${id})`, db);
      await waitFor(`the drain marker on ${consumer}`, arrived(database, id), 120_000);
    });
    lags.sort((a, b) => a - b);
    const pct = (p: number) => lags[Math.min(lags.length - 1, Math.floor((p / 100) * lags.length))] ?? NaN;
    live.push({ consumer, p50: pct(50), p99: pct(99), max: lags[lags.length - 1] ?? NaN, drainSeconds: drain });
  };
  await liveLag('native logical replication', 'bench_native');
  // The native subscriber stops consuming while pgshift follows (its slot just keeps the WAL).
  await dst.sql('ALTER SUBSCRIPTION bench_native DISABLE', 'bench_native');
  if (o.pgshift) {
    let following = true;
    const consuming = o.pgshift.consume('bench_pgshift', async () => !following);
    try {
      await liveLag('pgshift apply', 'bench_pgshift');
    } finally {
      following = false;
      await consuming;
    }
  }

  for (const c of watchers.values()) await c.end();
  await dst.sql('ALTER SUBSCRIPTION bench_native SET (slot_name = NONE); DROP SUBSCRIPTION bench_native', 'bench_native');
  for (const t of BENCH_TABLES) await src.sql(`ALTER TABLE ${t} RESET (autovacuum_enabled)`, db);
  for (const slot of [...DECODE_SLOTS, 'bench_native'])
    await src.sql(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${slot}'`, db);
  return { backlogChanges: changes, backlogMb: Number(mb), rates, live };
}

export function renderCaptureResults(r: CaptureBenchResult): string {
  const decode = r.rates[0];
  const native = r.rates.find((x) => x.consumer.startsWith('native'));
  const lines = [
    `### Change capture: catch-up of one pgbench backlog (${r.backlogChanges.toLocaleString('en-US')} changes, ${r.backlogMb.toFixed(0)} MB of WAL)`,
    '',
    '| consumer | seconds | changes/s | of the decode limit | vs native | CPU s: source / destination / worker / pg_recvlogical | note |',
    '|---|---:|---:|---:|---:|---|---|',
    ...r.rates.map(
      (x) =>
        `| ${x.consumer} | ${x.seconds.toFixed(2)} | ${Math.round(x.changesPerSecond).toLocaleString('en-US')} | ${((100 * x.changesPerSecond) / decode.changesPerSecond).toFixed(0)} % | ${native ? `${(x.changesPerSecond / native.changesPerSecond).toFixed(2)}×` : ''} | ${[x.cpu.source, x.cpu.destination, x.cpu.worker, x.cpu.children].map((c) => c.toFixed(2)).join(' / ')} | ${x.note ?? ''} |`,
    ),
    '',
    '| live consumer | lag p50 | lag p99 | lag max | drain after the workload |',
    '|---|---:|---:|---:|---:|',
    ...r.live.map((x) => `| ${x.consumer} | ${x.p50.toFixed(2)} s | ${x.p99.toFixed(2)} s | ${x.max.toFixed(2)} s | ${x.drainSeconds.toFixed(2)} s |`),
  ];
  return lines.join('\n');
}
