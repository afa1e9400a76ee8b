// pgshift's apply as a consumer of the change-capture bench: its slot is
// prepared before the workload (prepareSource), then applyChanges runs in
// this process, in rounds as the workflow runs it, until the bench's marker row shows up on the
// destination.
import { applyChanges } from '../activities/capture/apply';
import { prepareSource } from '../activities/capture/prepare-source';
import { prepareDestination } from '../activities/prepare';
import { APPLY_ROUND_SECONDS } from '../workflows/phases/incremental';
import type { Config } from '../lib/config';
import { parseConfig } from '../lib/io/config-load';
import type { LocalCluster } from '../dev/postgres';
import type { CaptureBenchOptions } from './change-capture';

export function pgshiftCaptureConsumer(
  src: LocalCluster,
  dst: LocalCluster,
  password: string,
  sourceDatabase: string,
): NonNullable<CaptureBenchOptions['pgshift']> {
  process.env.BENCH_PASSWORD = password;
  const runToken = 'bench-capture';
  let config: Config | undefined;
  return {
    async prepare(database) {
      const endpoint = (c: LocalCluster, db: string) => ({ host: '127.0.0.1', port: c.port, database: db, user: 'postgres', passwordEnv: 'BENCH_PASSWORD' });
      config = parseConfig({
        name: 'bench_capture',
        source: endpoint(src, sourceDatabase),
        destination: endpoint(dst, database),
        objects: { schemas: ['public'] },
      });
      await prepareDestination({ config, runToken });
      await prepareSource({ config, runToken });
    },
    async consume(_database, until) {
      let peak = process.memoryUsage().rss;
      const abort = new AbortController();
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
      const watcher = (async () => {
        while (!(await until())) await new Promise((r) => setTimeout(r, 20));
        abort.abort();
      })();
      try {
        // In rounds, as the workflow calls it (each round reopens its sessions and the stream): the
        // hand-over between two rounds is part of what the live lag measures.
        let rounds = 0;
        while (!abort.signal.aborted) {
          rounds++;
          await applyChanges({ config: config!, runToken, maxSeconds: APPLY_ROUND_SECONDS }, { signal: abort.signal }).catch((e) => {
            if (!abort.signal.aborted) throw e;
          });
        }
        await watcher;
        return { peakRssMb: peak / 2 ** 20, rounds };
      } finally {
        clearInterval(sampler);
      }
    },
  };
}
