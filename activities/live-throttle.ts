// The throttle a running activity follows: the workflow's current rates (and
// how many copies share them), asked through the workflow's query every few
// seconds, so a `pgshift throttle` takes effect without restarting anything.
import { Context } from '@temporalio/activity';
import { liveThrottleQuery, type LiveThrottle } from '../workflows/definitions';

/** The workflow's live throttle, or null outside a workflow's activity or when the query fails (keep the last rates). */
export async function queryLiveThrottle(): Promise<LiveThrottle | null> {
  try {
    const ctx = Context.current();
    const wf = ctx.info.workflowExecution;
    if (!wf) return null;
    return await ctx.client.workflow.getHandle(wf.workflowId).query(liveThrottleQuery);
  } catch {
    return null;
  }
}
