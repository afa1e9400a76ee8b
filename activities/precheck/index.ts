// The precheck activity, shared by EvaluationWorkflow and
// MigrationWorkflow. It opens one read-only session per side, runs every check,
// and reports each item pass / warn / fail with cause and fix. A connection
// failure is an item, not an exception, so the report always comes back.
import type { Client } from 'pg';
import type { Config } from '../../lib/config';
import { ConnectionSetupError, type Side } from '../../lib/io/pg';
import { session } from '../../lib/io/session';
import { item, type PrecheckItem } from '../../lib/precheck-catalog';
import { heartbeat } from '../heartbeat';
import type { Check, PrecheckContext } from './context';
import { readSelection, type Selection } from '../selection';
import { OBJECT_CHECKS } from './object-checks';
import { SERVER_CHECKS } from './server-checks';

export interface PrecheckInput {
  config: Config;
}

async function open(config: Config, side: Side): Promise<{ client?: Client; item: PrecheckItem }> {
  const id = side === 'source' ? 'source-connectivity' : 'destination-connectivity';
  const e = config[side];
  try {
    // Read-only by construction (the check profile): a check that tried to write would fail.
    const client = await session(config, side, 'precheck');
    const v = await client.query<{ v: string }>('SELECT version() AS v');
    return { client, item: item(id, 'pass', `connected to ${e.host}:${e.port}/${e.database} as ${e.user}: ${v.rows[0].v.split(' on ')[0]}`) };
  } catch (err) {
    const msg = err instanceof ConnectionSetupError ? err.message : String(err);
    return { item: item(id, 'fail', msg, 'fix the field named at the start of the cause, then run the evaluation again', { inputProblem: true }) };
  }
}

export async function runChecks(ctx: PrecheckContext, checks: Check[]): Promise<PrecheckItem[]> {
  const out: PrecheckItem[] = [];
  for (const check of checks) {
    ctx.heartbeat(check.name);
    const r = await check(ctx);
    out.push(...(Array.isArray(r) ? r : [r]));
  }
  return out;
}

export async function precheck(input: PrecheckInput): Promise<PrecheckItem[]> {
  const { config } = input;
  const [src, dst] = await Promise.all([open(config, 'source'), open(config, 'destination')]);
  let selection: Promise<Selection> | undefined;
  const ctx: PrecheckContext = {
    config,
    source: src.client,
    destination: dst.client,
    heartbeat,
    selection: () => (selection ??= readSelection(src.client!, config)),
  };
  try {
    const items = [src.item, dst.item, ...(await runChecks(ctx, [...SERVER_CHECKS, ...OBJECT_CHECKS]))];
    for (const i of items) if (i.verdict === 'warn' && config.acknowledgeWarnings.includes(i.id)) i.acknowledged = true;
    return items;
  } finally {
    await Promise.all([src.client?.end().catch(() => undefined), dst.client?.end().catch(() => undefined)]);
  }
}
