// EvaluationWorkflow: compatibility report + precheck of a
// config, without touching the source. The report is the workflow result and
// is shown as the workflow's current details in the Temporal UI.
import { defineQuery, proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Config } from '../lib/config';
import { endpointLabel } from '../lib/migration-ids';
import { type EvaluationReport, renderReportMarkdown, verdictOf } from '../lib/report';
import { SA_PHASE } from '../lib/search-attributes';

export interface EvaluationInput {
  config: Config;
}

export const evaluationReportQuery = defineQuery<EvaluationReport | null>('report');

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  // Connection failures are reported as precheck items, so a retry only helps
  // with a worker that died mid-activity.
  retry: { maximumAttempts: 3, initialInterval: '2s' },
});

export async function EvaluationWorkflow(input: EvaluationInput): Promise<EvaluationReport> {
  const { config } = input;
  let report: EvaluationReport | null = null;
  setHandler(evaluationReportQuery, () => report);
  const src = endpointLabel(config.source);
  const dst = endpointLabel(config.destination);

  setCurrentDetails(`Evaluating ${src} → ${dst}: running precheck and compatibility report…`);
  const [precheck, compatibility] = await Promise.all([
    acts.precheck.executeWithOptions(
      { startToCloseTimeout: '10 minutes', heartbeatTimeout: '2 minutes', retry: { maximumAttempts: 3 }, summary: `precheck ${src} → ${dst}` },
      [{ config }],
    ),
    acts.compatibilityReport.executeWithOptions(
      {
        startToCloseTimeout: '10 minutes',
        heartbeatTimeout: '2 minutes',
        retry: { maximumAttempts: 3 },
        summary: `compatibility report of ${src} against ${dst}`,
      },
      [{ config }],
    ),
  ]);

  report = {
    name: config.name,
    source: src,
    destination: dst,
    evaluatedAt: new Date(workflowInfo().startTime).toISOString(),
    compatibility,
    precheck,
    verdict: verdictOf(compatibility, precheck),
  };
  upsertSearchAttributes([{ key: SA_PHASE, value: report.verdict === 'compatible' ? 'evaluated' : 'evaluation-failed' }]);
  setCurrentDetails(renderReportMarkdown(report));
  return report;
}
