// Reading a config file and turning every problem into one line
// `path: what is wrong, what is expected` (the CLI prints them and exits 2).
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { Config } from '../config';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

export function loadConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`${file}: cannot read the config file (${(e as NodeJS.ErrnoException).code ?? String(e)}), expected a readable JSON or YAML file`]);
  }
  let raw: unknown;
  try {
    // YAML is a superset of JSON, so one parser reads both.
    raw = YAML.parse(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    const msg = String((e as Error).message).split('\n')[0];
    throw new ConfigError([`${file}: not valid YAML/JSON (${msg}), expected a mapping of config keys`]);
  }
  return parseConfig(raw);
}

export function parseConfig(raw: unknown): Config {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([`(config): expected a mapping with at least name, source and destination`]);
  }
  const passwordProblems = findPlainPasswords(raw as Record<string, unknown>);
  const result = Config.safeParse(raw);
  const problems = [...passwordProblems];
  if (!result.success) {
    for (const issue of result.error.issues) {
      for (const line of formatIssue(issue, raw).split('\n')) {
        // The plain-password line above says more than "unknown key".
        if (passwordProblems.some((p) => line.startsWith(p.split(':')[0] + ':'))) continue;
        if (!problems.includes(line)) problems.push(line);
      }
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return (result as { data: Config }).data;
}

function findPlainPasswords(raw: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const side of ['source', 'destination']) {
    const e = raw[side];
    if (e && typeof e === 'object' && 'password' in e) {
      out.push(
        `${side}.password: passwords are never accepted in the config file, expected passwordEnv (an environment variable name) or passwordFile (a path) resolved on the worker`,
      );
    }
  }
  return out;
}

function pathOf(path: PropertyKey[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(p))) s += (s ? '.' : '') + String(p);
    else s += `[${JSON.stringify(String(p))}]`;
  }
  return s || '(config)';
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${String(v)}`;
}

/** The keys a (possibly wrapped) zod object accepts at `path`, for "unknown key" hints. */
function allowedKeys(path: PropertyKey[]): string[] {
  let s: z.ZodType = Config;
  const unwrap = (t: z.ZodType): z.ZodType => {
    // default / optional / nullable / pipe wrappers keep the object in innerType or in.
    for (;;) {
      const def = (t as unknown as { _zod: { def: { innerType?: z.ZodType; in?: z.ZodType; type: string } } })._zod.def;
      if (def.innerType) t = def.innerType;
      else if (def.type === 'pipe' && def.in) t = def.in;
      else return t;
    }
  };
  for (const p of path) {
    s = unwrap(s);
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodType>)[String(p)];
    else return [];
    if (!s) return [];
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

export function formatIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const at = pathOf(issue.path);
  const got = valueAt(raw, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const keys = allowedKeys(issue.path);
      return issue.keys.map((k) => `${pathOf([...issue.path, k])}: unknown key, expected one of ${keys.join(', ')}`).join('\n');
    }
    case 'invalid_type':
      if (got === undefined) return `${at}: missing, expected ${issue.message.startsWith('expected') ? issue.message.slice(9) : issue.expected}`;
      return `${at}: got ${describe(got)}, ${issue.message.startsWith('expected') ? issue.message : `expected ${issue.expected}`}`;
    case 'invalid_value':
      return `${at}: got ${describe(got)}, expected one of ${issue.values.map((v) => JSON.stringify(v)).join(' | ')}`;
    case 'too_small':
    case 'too_big':
    case 'not_multiple_of':
    case 'invalid_format':
      return `${at}: got ${describe(got)}, ${issue.message.startsWith('expected') ? issue.message : issue.message.replace(/^Too (small|big): /, 'expected ')}`;
    default:
      return `${at}: ${issue.message}`;
  }
}
