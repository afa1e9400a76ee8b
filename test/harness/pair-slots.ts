// The replication slots a test file's migrations leave on their sources, dropped after the file.
import type { ClusterHandle } from '../../dev/postgres';

/** Source databases of the pairs this test file made: their replication slots are dropped after the file (vitest setupFiles: test/harness/file-cleanup.ts). */
const pairSources: { cluster: ClusterHandle; database: string }[] = [];

/**
 * Drop the slots this file's migrations left on their sources (tests that drive activities directly never release
 * them; a failed test leaves its migration's): the suite's shared clusters have a fixed number of slots, and an
 * abandoned slot holds back WAL for every later file. A walsender still holding one is ended first. Clusters a test
 * has stopped are skipped.
 */
export async function dropPairSlots(): Promise<void> {
  for (const { cluster, database } of pairSources.splice(0)) {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        const left = await cluster.sql<{ n: number }>(
          `SELECT count(*)::int AS n FROM (
             SELECT CASE WHEN active THEN pg_terminate_backend(active_pid) ELSE pg_drop_replication_slot(slot_name) IS NULL END
               FROM pg_replication_slots WHERE database = $1) s`,
          'postgres',
          [database],
        );
        if (left[0].n === 0) break;
      } catch {
        break; // the cluster is gone (stopped by the test), or the slot went meanwhile: checked on the next attempt only if it answered
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export function registerPairSource(cluster: ClusterHandle, database: string): void {
  pairSources.push({ cluster, database });
}
