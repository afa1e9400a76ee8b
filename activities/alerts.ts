// sendAlert: POST an alert (lib/alerts.ts) as JSON to alerts.webhookUrl.
// A webhook that is down, slow or refusing must never fail or hold up the
// migration: a few attempts, each with a short timeout, then the outcome is
// logged and returned — this activity never throws.
import { Context } from '@temporalio/activity';
import type { Alert } from '../lib/alerts';
import { countAlert } from '../worker/metrics';

export interface SendAlertInput {
  url: string;
  alert: Alert;
  /** For tests: attempts and per-attempt timeout. */
  attempts?: number;
  timeoutMs?: number;
}

export interface SendAlertResult {
  delivered: boolean;
  attempts: number;
  /** HTTP status of the last attempt (null: no answer). */
  status: number | null;
  error: string | null;
}

const DEFAULT_ATTEMPTS = 3;
const DEFAULT_TIMEOUT_MS = 5_000;

function logger() {
  try {
    return Context.current().log;
  } catch {
    return { info: (m: string) => console.error(m), warn: (m: string) => console.error(m) };
  }
}

function cancellation(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

/** The webhook's address without user info or query (which may carry a token), for log lines. */
function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return 'the webhook';
  }
}

export async function sendAlert(input: SendAlertInput): Promise<SendAlertResult> {
  const { alert } = input;
  const attempts = input.attempts ?? DEFAULT_ATTEMPTS;
  const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const body = JSON.stringify(alert);
  const cancelled = cancellation();
  let status: number | null = null;
  let error: string | null = null;
  let n = 0;
  for (n = 1; n <= attempts; n++) {
    if (cancelled?.aborted) break;
    try {
      const res = await fetch(input.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'pgshift' },
        body,
        signal: cancelled ? AbortSignal.any([cancelled, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
      if (res.ok) {
        error = null;
        break;
      }
      error = `HTTP ${res.status}`;
      // A client error other than a rate limit will not change with a retry.
      if (res.status < 500 && res.status !== 429) break;
    } catch (e) {
      status = null;
      error = (e as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e as Error).message;
    }
    if (n < attempts) await new Promise((r) => setTimeout(r, 500 * 2 ** (n - 1)));
  }
  const delivered = error === null && status !== null;
  countAlert(alert.migration, alert.kind, delivered);
  const where = shownUrl(input.url);
  if (delivered) logger().info(`alert ${alert.kind} (${alert.severity}) of migration ${alert.migration} delivered to ${where}`);
  else
    logger().warn(
      `alert ${alert.kind} (${alert.severity}) of migration ${alert.migration} not delivered to ${where} after ${Math.min(n, attempts)} attempts: ${error ?? 'cancelled'}`,
    );
  return { delivered, attempts: Math.min(n, attempts), status, error };
}
