// Pure tests of the config schema and its messages (no servers needed).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../lib/io/config-load';
import { refreshReadme } from '../dev/config-reference';
import { parseQualifiedName } from '../lib/ident';

const base = {
  name: 'orders',
  source: { host: '127.0.0.1', database: 'app', user: 'migrator', passwordEnv: 'SRC_PW' },
  destination: { host: '127.0.0.1', port: 5433, database: 'app', user: 'owner', passwordFile: '/run/secrets/dst' },
};

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('config schema', () => {
  it('fills the documented defaults', () => {
    const c = parseConfig(base);
    expect(c.retry).toEqual({ connectionMinutes: 720, otherMinutes: 10 });
    expect(c.mode).toEqual({ schema: true, full: true, incremental: true });
    expect(c.existingTargetTables).toBe('precheck-error');
    expect(c.objects.nameCase).toBe('keep');
    expect(c.taskQueue).toBe('pgshift');
    expect(c.source.port).toBe(5432);
  });

  it('accepts the documented example config', () => {
    const c = parseConfig({
      ...base,
      mode: { schema: true, full: true, incremental: true },
      objects: {
        schemas: ['app', 'Billing Ops'],
        include: [],
        exclude: ['app.audit_log'],
        rename: { schemas: { 'Billing Ops': 'billing' }, tables: { 'app.customers_v1': 'app.customers' }, columns: { 'app.customers.fname': 'first_name' } },
        filters: { 'app.events': "created_at > now() - interval '90 days'" },
        nameCase: 'keep',
      },
      existingTargetTables: 'precheck-error',
      acknowledgeWarnings: [],
      retry: { connectionMinutes: 720, otherMinutes: 10 },
      throttle: { fullRowsPerSecond: null, fullMbPerSecond: null, incrementalRowsPerSecond: null },
      parallelism: { tables: 4, indexes: 2 },
      verification: { full: true, incremental: true, schema: true },
      cutover: { maxLagSeconds: 5, fence: 'none' },
      alerts: { lagSeconds: 30, webhookUrl: null },
      environmentTag: 'staging',
      taskQueue: 'pgshift',
    });
    expect(c.objects.rename.schemas['Billing Ops']).toBe('billing');
  });

  it('names the field, what is wrong and what is expected', () => {
    expect(problems({ ...base, source: { ...base.source, port: 'x' } })).toEqual(['source.port: got the string "x", expected number']);
    expect(problems({ ...base, retry: { connectionMinutes: 5 } })).toContain(
      'retry.connectionMinutes: got number 5, expected a whole number of minutes between 10 and 1440',
    );
    expect(problems({ ...base, retry: { connectionMinutes: 2000 } })[0]).toMatch(/^retry.connectionMinutes: got number 2000, expected .*between 10 and 1440/);
    expect(problems({ ...base, retry: { otherMinutes: 0 } })).toEqual([
      'retry.otherMinutes: got number 0, expected a whole number of minutes between 1 and 1440',
    ]);
    expect(problems({ ...base, retry: { connectionMinutes: 30, otherMinutes: 30 } })).toEqual([
      'retry.otherMinutes: 30 is not smaller than connectionMinutes (30), expected a smaller window',
    ]);
    expect(problems({ ...base, bogus: 1 })[0]).toMatch(/^bogus: unknown key, expected one of name, source, destination/);
    expect(problems({ ...base, objects: { schemas: ['app'], tabels: [] } })[0]).toMatch(/^objects.tabels: unknown key, expected one of schemas, include/);
    expect(problems({ ...base, name: undefined })).toEqual(['name: missing, expected a migration name']);
    expect(problems({ ...base, existingTargetTables: 'skip' })).toEqual([
      'existingTargetTables: got the string "skip", expected one of "precheck-error" | "ignore"',
    ]);
  });

  it('refuses passwords in the file and says where they go', () => {
    const p = problems({ ...base, source: { ...base.source, password: 'hunter2' } });
    expect(p).toEqual([expect.stringMatching(/^source.password: passwords are never accepted .* expected passwordEnv .* or passwordFile/)]);
    expect(p.join()).not.toContain('hunter2');
    expect(problems({ ...base, source: { ...base.source, passwordFile: '/x' } })).toEqual([
      'source.passwordFile: set only one of passwordEnv and passwordFile',
    ]);
  });

  it('reports every problem, one line each', () => {
    const p = problems({ name: 'Bad Name', source: { host: 'h' }, destination: base.destination, throttle: { fullRowsPerSecond: -5 } });
    expect(p.length).toBe(4);
    for (const line of p) expect(line).toMatch(/^[\w.[\]"]+: .+/);
  });

  it('parses qualified names with SQL identifier syntax, never splitting quoted dots', () => {
    expect(parseQualifiedName('"Billing Ops"."Order Items"', 2)).toEqual(['Billing Ops', 'Order Items']);
    expect(parseQualifiedName('app."a.b"', 2)).toEqual(['app', 'a.b']);
    expect(parseQualifiedName('app."We""ird"', 2)).toEqual(['app', 'We"ird']);
    expect(parseQualifiedName('app.t.col', 3)).toEqual(['app', 't', 'col']);
    expect(() => parseQualifiedName('app.Orders', 2)).toThrow(/must be double-quoted/);
    expect(() => parseQualifiedName('app', 2)).toThrow(/expected schema.table/);
    expect(problems({ ...base, objects: { include: ['app.Orders'] } })).toEqual([
      'objects.include[0]: "Orders" in "app.Orders" must be double-quoted (unquoted names are lower-case letters, digits and _; write "Orders")',
    ]);
    expect(problems({ ...base, objects: { filters: { 'a.b.c': 'x > 1' } } })).toEqual([
      'objects.filters["a.b.c"]: "a.b.c" has 3 part(s), expected schema.table',
    ]);
  });

  it('README config reference and precheck table match the schema', () => {
    const readme = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
    expect(refreshReadme(readme), 'README is stale: run npm run config-reference').toBe(readme);
  });
});
