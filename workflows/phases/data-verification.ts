// Verification steps shared by MigrationWorkflow and VerificationWorkflow.
import type { Duration } from '@temporalio/common';
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type { Config } from '../../lib/config';
import type { DataVerification } from '../../lib/migration-state';
import { runPool } from '../pool';

export interface VerifyDeps {
  config: Config;
  acts: ReturnType<typeof proxyActivities<Activities>>;
  heartbeatTimeout: Duration;
  /** Receives the verification object as it fills (for status and UI). */
  onStart?: (v: DataVerification) => void;
  onProgress?: () => void;
  /** false stops taking new tables (abort). */
  mayProceed?: () => Promise<boolean>;
}

/** Every copied table compared row by row, `parallelism.tables` at a time. */
export async function runDataVerification(d: VerifyDeps): Promise<DataVerification> {
  const { config, acts } = d;
  const tables = await acts.listCopiedTables.executeWithOptions({ startToCloseTimeout: '5m', summary: 'list tables to verify' }, [{ config }]);
  const v: DataVerification = { startedAt: new Date().toISOString(), finishedAt: null, tables: {} };
  d.onStart?.(v);
  await runPool(
    tables,
    config.parallelism.tables,
    async (t) => {
      const r = await acts.verifyTableData.executeWithOptions(
        { startToCloseTimeout: '24h', heartbeatTimeout: d.heartbeatTimeout, summary: `verify rows of ${t.display}` },
        [{ config, table: t.key }],
      );
      v.tables[t.key] = { display: r.display, rowsSource: r.rowsSource, rowsDestination: r.rowsDestination, consistent: r.consistent, differingKeys: r.differingKeys, summary: r.summary };
      d.onProgress?.();
    },
    async () => (d.mayProceed ? !(await d.mayProceed()) : false),
  );
  v.finishedAt = new Date().toISOString();
  return v;
}
