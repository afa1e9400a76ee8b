// Change capture on the engine generations of PolarDB-O 1.0 → 2.0:
// PostgreSQL 11 → 14. The destination role is not superuser and 14 cannot
// grant session_replication_role, so the apply runs without replica role
// (FK checks fire): the collapsed batches must still converge.
import { describe, expect, it } from 'vitest';
import { applyChanges } from '../activities/capture/apply';
import { prepareSource, releaseSource } from '../activities/capture/prepare-source';
import { copyChunk } from '../activities/full-load/chunk';
import { parseLsn } from '../lib/capture/lsn';
import { expectOnlineTablesIdentical, ONLINE_DDL, ONLINE_SCHEMA, ONLINE_SEED, workloadRound } from './fixtures/online-workload';
import { planAllTables } from './harness/full-load';
import { capturePair } from './harness/capture';
import { appliedLsn, sourceInsertLsn } from './harness/capture-compare';
import { clusters } from './harness/env';

describe('change capture 11 → 14', () => {
  it('prepares on 11, copies, applies the online workload with a restart in the middle, converges on 14', async () => {
    const { pg11, pg14 } = clusters();
    const pair = await capturePair({ source: pg11, destination: pg14 });
    await pair.sourceAsRole(ONLINE_DDL + ONLINE_SEED);
    // Foreign keys are added after the data, as the schema migration does.
    const fks: string[] = [];
    const ddl = ONLINE_DDL.replace(/CREATE TABLE (shop\.\w+) \(([^;]*)\);/g, (_all, table: string, body: string) => {
      const cols = body.replace(
        /(\w+) (bigint|int) NOT NULL REFERENCES (shop\.\w+)( ON DELETE CASCADE)?/g,
        (_m, col: string, type: string, ref: string, cascade?: string) => {
          fks.push(`ALTER TABLE ${table} ADD FOREIGN KEY (${col}) REFERENCES ${ref}${cascade ?? ''}`);
          return `${col} ${type} NOT NULL`;
        },
      );
      return `CREATE TABLE ${table} (${cols});`;
    });
    expect(fks).toHaveLength(3);
    await pair.destinationAsRole(ddl);
    const config = pair.config({ objects: { schemas: [ONLINE_SCHEMA] } });
    const { runToken } = pair;

    const prepared = await prepareSource({ config, runToken });
    expect(prepared.tables).toHaveLength(9);
    await workloadRound(pair.source, 1); // during the copy: in a snapshot and in the stream
    for (const t of await planAllTables(config, runToken)) {
      for (const chunk of t.pending) await copyChunk({ config, runToken, table: t.key, chunk }, { current: async () => null });
    }
    await pair.destinationAsRole(fks.join(';'));
    await workloadRound(pair.source, 2);
    await workloadRound(pair.source, 3);
    const first = await applyChanges({ config, runToken, stopAtLsn: await sourceInsertLsn(pair.source) });
    expect(first.replicaRole).toBe(false);
    await expectOnlineTablesIdentical(pair);

    // Writes while the apply runs; it is cancelled mid-way and started again.
    const abort = new AbortController();
    const running = applyChanges({ config, runToken }, { signal: abort.signal });
    await workloadRound(pair.source, 4);
    abort.abort();
    // It stops at a destination commit and returns what it applied (the position is on the destination).
    const cancelled = await running;
    expect(await appliedLsn(config)).toBe(parseLsn(cancelled.appliedLsn));
    await workloadRound(pair.source, 5);
    await workloadRound(pair.source, 6);
    const target = await sourceInsertLsn(pair.source);
    const last = await applyChanges({ config, runToken, stopAtLsn: target });
    expect(parseLsn(last.appliedLsn) >= parseLsn(target)).toBe(true);
    await expectOnlineTablesIdentical(pair);

    expect(await releaseSource({ config })).toEqual({ droppedSlot: true, droppedPublication: true, droppedSchema: true, fence: 'none' });
  });
});
