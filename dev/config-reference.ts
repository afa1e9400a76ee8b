// The README's config reference, generated from the zod schema so the two
// cannot drift apart (a test compares them; `npm run config-reference` rewrites it).
import { z } from 'zod';
import { Config } from '../lib/config';
import { PRECHECK_ITEMS } from '../lib/precheck-catalog';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  pattern?: string;
}

function typeOf(s: JsonSchema): string {
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.enum && s.enum.length > 8) return 'precheck item id (see Precheck items)';
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  const t = Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'any');
  if (t === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  if (t === 'object' && !s.properties) return 'map';
  const range =
    s.minimum !== undefined && s.maximum !== undefined
      ? ` ${s.minimum}–${s.maximum}`
      : s.exclusiveMinimum !== undefined
        ? ` > ${s.exclusiveMinimum}`
        : s.minimum !== undefined
          ? ` ≥ ${s.minimum}`
          : '';
  return t + range;
}

function defaultOf(s: JsonSchema, required: boolean): string {
  if (s.default === undefined) return required ? '**required**' : '';
  if (typeof s.default === 'object' && s.default !== null && !Array.isArray(s.default)) return '';
  return `\`${JSON.stringify(s.default)}\``;
}

function rows(s: JsonSchema, prefix: string, required: boolean, out: string[]): void {
  if (prefix) out.push(`| \`${prefix}\` | ${typeOf(s)} | ${defaultOf(s, required)} | ${(s.description ?? '').replace(/\|/g, '\\|')} |`);
  for (const [k, child] of Object.entries(s.properties ?? {})) {
    rows(child, prefix ? `${prefix}.${k}` : k, (s.required ?? []).includes(k) && child.default === undefined, out);
  }
}

export function configReferenceMarkdown(): string {
  const schema = z.toJSONSchema(Config, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const out = ['| key | type | default | meaning |', '|---|---|---|---|'];
  rows(schema, '', true, out);
  return out.join('\n');
}

export function precheckItemsMarkdown(): string {
  return ['| id | checks |', '|---|---|', ...Object.entries(PRECHECK_ITEMS).map(([id, title]) => `| \`${id}\` | ${title} |`)].join('\n');
}

/** Generated blocks of README.md: marker name → content. */
export const README_BLOCKS: Record<string, () => string> = {
  'config-reference': configReferenceMarkdown,
  'precheck-items': precheckItemsMarkdown,
};

const blockRe = (name: string) => new RegExp(`(<!-- ${name}:begin[^>]*-->\\n)[\\s\\S]*?(<!-- ${name}:end -->)`);

/** README text with every generated block replaced by its current content. */
export function refreshReadme(text: string): string {
  let out = text;
  for (const [name, render] of Object.entries(README_BLOCKS)) {
    if (!blockRe(name).test(out)) throw new Error(`README.md lacks the <!-- ${name}:begin --> … <!-- ${name}:end --> markers`);
    out = out.replace(blockRe(name), (_m, a: string, b: string) => `${a}${render()}\n${b}`);
  }
  return out;
}

if (require.main === module) {
  const file = path.join(__dirname, '..', 'README.md');
  writeFileSync(file, refreshReadme(readFileSync(file, 'utf8')));
}
