// Evaluation report: the result of EvaluationWorkflow, rendered for the CLI
// and for the Temporal UI's "current details". Pure (imported by workflow code).
import type { PrecheckItem } from './precheck-catalog';

export type ObjectKind =
  | 'schema'
  | 'table'
  | 'partitioned table'
  | 'column'
  | 'index'
  | 'constraint'
  | 'sequence'
  | 'view'
  | 'materialized view'
  | 'function'
  | 'procedure'
  | 'type'
  | 'domain'
  | 'trigger'
  | 'rule'
  | 'extension'
  | 'foreign table'
  | 'large object'
  | 'collation';

export interface KindCount {
  kind: ObjectKind;
  compatible: number;
  incompatible: number;
}

export interface IncompatibleObject {
  kind: ObjectKind;
  /** Display name, e.g. app."Order Items" or app.f(integer). */
  object: string;
  problem: string;
  fix: string;
}

export interface CompatibilityReport {
  overview: KindCount[];
  details: IncompatibleObject[];
}

export interface EvaluationReport {
  name: string;
  source: string;
  destination: string;
  evaluatedAt: string;
  compatibility: CompatibilityReport;
  precheck: PrecheckItem[];
  /** compatible: nothing fails; incompatible: something fails; bad-input: a failure the invocation causes (secret, host). */
  verdict: 'compatible' | 'incompatible' | 'bad-input';
}

export function verdictOf(compat: CompatibilityReport, precheck: PrecheckItem[]): EvaluationReport['verdict'] {
  const fails = precheck.filter((p) => p.verdict === 'fail');
  if (fails.some((p) => p.inputProblem)) return 'bad-input';
  if (fails.length || compat.details.length) return 'incompatible';
  return 'compatible';
}

const ICON = { pass: '✅', warn: '⚠️', fail: '❌' } as const;
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Markdown, readable in the Temporal UI and in a terminal. */
export function renderReportMarkdown(r: EvaluationReport): string {
  const lines: string[] = [];
  const counts = { pass: 0, warn: 0, fail: 0 };
  for (const p of r.precheck) counts[p.verdict]++;
  lines.push(`## Evaluation of ${r.name}: ${r.verdict.toUpperCase()}`);
  lines.push(`${r.source} → ${r.destination} · ${r.evaluatedAt}`);
  lines.push('');
  lines.push(`### Compatibility overview`);
  lines.push('| kind | compatible | incompatible |', '|---|---:|---:|');
  for (const k of r.compatibility.overview) lines.push(`| ${k.kind} | ${k.compatible} | ${k.incompatible} |`);
  if (r.compatibility.details.length) {
    lines.push('', '### Incompatible objects', '| kind | object | problem | fix |', '|---|---|---|---|');
    for (const d of r.compatibility.details) lines.push(`| ${d.kind} | ${cell(d.object)} | ${cell(d.problem)} | ${cell(d.fix)} |`);
  }
  lines.push('', `### Precheck: ${counts.pass} pass, ${counts.warn} warn, ${counts.fail} fail`);
  lines.push('| | item | cause | fix |', '|---|---|---|---|');
  for (const p of r.precheck) {
    const ack = p.verdict === 'warn' && p.acknowledged ? ' (acknowledged)' : '';
    lines.push(`| ${ICON[p.verdict]} ${p.verdict}${ack} | ${p.id} | ${cell(p.cause)} | ${cell(p.fix)} |`);
  }
  return lines.join('\n');
}
