// VerificationWorkflow (`pgshift verify ID`): schema and/or full data
// verification of a migration on demand, with the migration's own config.
import { ActivityCancellationType, defineQuery, proxyActivities, setCurrentDetails, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Config } from '../lib/config';
import { renderStatusMarkdown, initialState, type DataVerification, type SchemaVerification } from '../lib/migration-state';
import { runDataVerification } from './phases/data-verification';

export interface VerificationInput {
  config: Config;
  schema: boolean;
  data: boolean;
}

export interface VerificationResult {
  schema: SchemaVerification | null;
  data: DataVerification | null;
  consistent: boolean;
}

export const verificationQuery = defineQuery<VerificationResult>('verification');

const HEARTBEAT_TIMEOUT = '15s' as const;
const acts = proxyActivities<Activities>({
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  startToCloseTimeout: '24h',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: { maximumInterval: '1m' },
});

export async function VerificationWorkflow(input: VerificationInput): Promise<VerificationResult> {
  const { config } = input;
  const result: VerificationResult = { schema: null, data: null, consistent: true };
  setHandler(verificationQuery, () => result);
  // Render through the migration status view, so the UI looks the same.
  const view = initialState(config, '', new Date().toISOString());
  const show = () => {
    view.schema.verification = result.schema;
    view.dataVerification = result.data;
    view.phase = 'verify';
    setCurrentDetails(
      renderStatusMarkdown(config.name, { mode: config.mode, verification: { ...config.verification, schema: input.schema, full: input.data } }, view),
    );
  };
  if (input.schema) {
    result.schema = await acts.verifySchema.executeWithOptions({ startToCloseTimeout: '1h', heartbeatTimeout: HEARTBEAT_TIMEOUT, summary: 'verify schema' }, [
      { config },
    ]);
    show();
  }
  if (input.data) {
    result.data = (
      await runDataVerification({
        config,
        acts,
        heartbeatTimeout: HEARTBEAT_TIMEOUT,
        onStart: (v) => (result.data = v),
        onProgress: show,
        awaitAlert: true,
      })
    ).verification;
  }
  result.consistent = !(result.schema?.differences.length ?? 0) && !(result.data?.inconsistent ?? 0);
  show();
  return result;
}
