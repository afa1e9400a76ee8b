// Repeatable catch-up runs of pgshift's apply alone, for profiling it: one
// pgbench backlog is recorded once behind a slot; each run copies that slot
// (pg_copy_logical_replication_slot, same position) and applies the whole
// backlog onto a fresh copy of the destination as the full load left it
// (CREATE DATABASE … TEMPLATE), then checks the destination against the
// source. Prints seconds, changes/s and the CPU time of the worker, the
// source and the destination per run; the CPU times are the steadier
// numbers on a shared machine.
//   npx tsx --max-semi-space-size=32 --initial-old-space-size=128 bench/apply-profile.ts [--scale 5] [--transactions 50000] [--runs 3]
//   node --max-semi-space-size=32 --initial-old-space-size=128 --cpu-prof -r tsx/cjs bench/apply-profile.ts …   (a CPU profile of the runs)
//   --tuning '{"queueItems":5000}'   apply tuning (ApplyTuning in activities/capture/apply.ts) for every run
//   --touched off,all,2000   run i queues keys for incremental verification as the i-th entry says (cycling):
//                            off, every key (all), or sampled at that many keys/s
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { applyChanges } from '../activities/capture/apply';
import { prepareSource } from '../activities/capture/prepare-source';
import { prepareDestination } from '../activities/prepare';
import { parseConfig } from '../lib/io/config-load';
import { startCluster, type LocalCluster } from '../dev/postgres';
import { cpuDelta, cpuSnapshot, postmasterPid } from './cpu';

const run = promisify(execFile);
const PASSWORD = 'bench-superuser';
const DB = 'bench';
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};

async function main() {
  const scale = arg('scale', 5);
  const transactions = arg('transactions', 50_000);
  const runs = arg('runs', 3);
  const settings = { max_wal_size: '4GB', shared_buffers: '512MB', checkpoint_timeout: '30min' };
  const [src, dst] = await Promise.all([
    startCluster({ version: 15, label: 'prof-src', password: PASSWORD, settings }),
    startCluster({ version: 15, label: 'prof-dst', password: PASSWORD, settings }),
  ]);
  try {
    const env = { ...process.env, PGPASSWORD: PASSWORD, PATH: `${src.binDir}:${process.env.PATH}` };
    const conn = (c: LocalCluster) => `host=127.0.0.1 port=${c.port} user=postgres dbname=${DB}`;
    await src.sql(`CREATE DATABASE ${DB}`);
    await dst.sql(`CREATE DATABASE ${DB}`);
    await run(path.join(src.binDir, 'pgbench'), ['-i', '-q', '-s', String(scale), conn(src)], { env });
    await src.sql(`ALTER TABLE pgbench_history ADD COLUMN hid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`, DB);
    const schema = (await run(path.join(src.binDir, 'pg_dump'), ['--schema-only', '-d', conn(src)], { env, maxBuffer: 64 << 20 })).stdout.replace(
      /^\\.*$/gm,
      '',
    );
    await dst.sql(schema, DB);
    for (const t of ['pgbench_branches', 'pgbench_tellers', 'pgbench_accounts']) {
      await run(
        'sh',
        ['-c', `psql -qAt -d "${conn(src)}" -c "COPY ${t} TO STDOUT (FORMAT binary)" | psql -qAt -d "${conn(dst)}" -c "COPY ${t} FROM STDIN (FORMAT binary)"`],
        { env },
      );
    }
    process.env.BENCH_PASSWORD = PASSWORD;
    const endpoint = (c: LocalCluster, database = DB) => ({ host: '127.0.0.1', port: c.port, database, user: 'postgres', passwordEnv: 'BENCH_PASSWORD' });
    const tuning = process.argv.includes('--tuning') ? JSON.parse(process.argv[process.argv.indexOf('--tuning') + 1]) : {};
    const touchedModes = (process.argv.includes('--touched') ? process.argv[process.argv.indexOf('--touched') + 1] : 'off').split(',');
    const configFor = (slot: string, budget: number | null = null, dstDb = DB) =>
      parseConfig({
        name: 'prof',
        source: endpoint(src),
        destination: endpoint(dst, dstDb),
        objects: { schemas: ['public'] },
        incremental: { slotName: slot },
        verification: { incrementalRowsPerSecond: budget },
      });
    const runToken = 'prof';
    await prepareDestination({ config: configFor('prof_base'), runToken });
    await prepareSource({ config: configFor('prof_base'), runToken });
    await run(path.join(src.binDir, 'pgbench'), ['-n', '-c', '2', '-j', '2', '-t', String(Math.ceil(transactions / 2)), conn(src)], { env });
    // The insert position: with synchronous_commit off the write position may still be behind the last commits.
    const [{ end }] = await src.sql<{ end: string }>('SELECT pg_current_wal_insert_lsn()::text AS end', DB);
    const changes = 4 * 2 * Math.ceil(transactions / 2);
    console.log(`backlog: ${changes} changes`);
    for (let i = 1; i <= runs; i++) {
      const slot = `prof_${i}`;
      // Each run starts from a copy of the destination as the full load left it (rows never updated
      // there yet, full pages: what the bench's catch-up meets), not from the previous run's result.
      const runDb = `prof_run_${i}`;
      await dst.sql(`CREATE DATABASE ${runDb} TEMPLATE ${DB}`);
      await src.sql(`SELECT pg_copy_logical_replication_slot('prof_base', '${slot}')`, DB);
      await dst.sql(`UPDATE pgshift.capture SET slot_name = '${slot}' WHERE migration = 'prof'`, runDb);
      const mode = touchedModes[(i - 1) % touchedModes.length];
      const pids = { source: postmasterPid(src.dataDir), destination: postmasterPid(dst.dataDir), temporal: 0 };
      const servers0 = cpuSnapshot(pids);
      const t0 = process.hrtime.bigint();
      const cpu0 = process.cpuUsage();
      const r = await applyChanges(
        {
          config: configFor(slot, mode === 'all' || mode === 'off' ? null : Number(mode), runDb),
          runToken,
          stopAtLsn: end,
          recordTouched: mode !== 'off',
        },
        { tuning },
      );
      console.log(`run ${i}: touched keys ${mode}${r.touched ? ` (${r.touched.recorded} queued, ${r.touched.skipped} sampled out)` : ''}`);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      const servers = cpuDelta(servers0, cpuSnapshot(pids));
      console.log(
        `run ${i}: ${s.toFixed(2)} s, ${Math.round(r.changes / s)} changes/s (${r.changes} changes, ${r.transactions} transactions, ${r.statements} statements, stream ${JSON.stringify(r.stream)})` +
          `, worker CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s, source ${servers.source.toFixed(2)} s, destination ${servers.destination.toFixed(2)} s`,
      );
      await src.sql(`SELECT pg_drop_replication_slot('${slot}')`, DB);
      const digest = `SELECT (SELECT count(*) FROM pgbench_history)::text AS h, (SELECT sum(abalance) FROM pgbench_accounts)::text AS a, (SELECT sum(bbalance) FROM pgbench_branches)::text AS b`;
      const [[x], [y]] = await Promise.all([src.sql(digest, DB), dst.sql(digest, runDb)]);
      if (JSON.stringify(x) !== JSON.stringify(y)) throw new Error(`destination differs: source ${JSON.stringify(x)}, destination ${JSON.stringify(y)}`);
      await dst.sql(`DROP DATABASE ${runDb}`);
    }
  } finally {
    await Promise.all([src.stop(), dst.stop()]);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
