// docker-compose.yml describes the production-shaped stack. Without a Docker
// engine it is validated here by reading it: the shape of every service (image
// or build, ports, health checks, dependencies, volumes, variable syntax) and
// the stack pgshift needs. Where Docker Compose exists, `docker compose config
// -q` must accept it too.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { z } from 'zod';
import { SEARCH_ATTRIBUTES } from '../lib/search-attributes';

const root = path.resolve(__dirname, '..');
const file = path.join(root, 'docker-compose.yml');

const duration = z.string().regex(/^(\d+(\.\d+)?(us|ms|s|m|h))+$/, 'a duration like 5s or 1m30s');
const stringList = z.array(z.string());
const service = z
  .object({
    image: z
      .string()
      .regex(/^[a-z0-9./_-]+(:[A-Za-z0-9._-]+)?$/, 'an image reference name[:tag]')
      .optional(),
    build: z.union([z.string(), z.object({ context: z.string(), dockerfile: z.string().optional() }).strict()]).optional(),
    command: z.union([z.string(), stringList]).optional(),
    entrypoint: z.union([z.string(), stringList]).optional(),
    environment: z.union([z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])), stringList]).optional(),
    ports: z.array(z.string().regex(/^(\d{1,5}:)?\d{1,5}(\/(tcp|udp))?$/, '"host:container" ports')).optional(),
    volumes: stringList.optional(),
    depends_on: z
      .union([
        stringList,
        z.record(z.string(), z.object({ condition: z.enum(['service_started', 'service_healthy', 'service_completed_successfully']) }).strict()),
      ])
      .optional(),
    healthcheck: z
      .object({
        test: z.union([z.string(), stringList]),
        interval: duration.optional(),
        timeout: duration.optional(),
        retries: z.number().int().positive().optional(),
        start_period: duration.optional(),
      })
      .strict()
      .optional(),
    restart: z.enum(['no', 'always', 'on-failure', 'unless-stopped']).optional(),
  })
  .strict();
const composeFile = z
  .object({ name: z.string().optional(), services: z.record(z.string(), service), volumes: z.record(z.string(), z.unknown().nullable()).optional() })
  .strict();

/** Every problem of a parsed compose document, one line each (empty: valid). */
function composeProblems(doc: unknown): string[] {
  const parsed = composeFile.safeParse(doc);
  const problems = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  // The cross-references are checked even when the shape is wrong, so one run reports everything.
  const { services = {}, volumes = {} } = (doc ?? {}) as z.infer<typeof composeFile>;
  const hostPorts = new Map<string, string>();
  for (const [name, svc] of Object.entries(services)) {
    if (!svc.image === !svc.build) problems.push(`services.${name}: needs exactly one of image and build`);
    if (typeof svc.build === 'object' && svc.build.dockerfile && !existsSync(path.join(root, svc.build.context, svc.build.dockerfile))) {
      problems.push(`services.${name}.build.dockerfile: ${svc.build.dockerfile} does not exist`);
    }
    const deps = Array.isArray(svc.depends_on) ? Object.fromEntries(svc.depends_on.map((d) => [d, { condition: 'service_started' }])) : (svc.depends_on ?? {});
    for (const [dep, { condition }] of Object.entries(deps)) {
      if (!services[dep]) problems.push(`services.${name}.depends_on: unknown service ${dep}`);
      else if (condition === 'service_healthy' && !services[dep].healthcheck)
        problems.push(`services.${name}.depends_on.${dep}: service_healthy but ${dep} has no healthcheck`);
    }
    for (const p of svc.ports ?? []) {
      if (
        p
          .split(/[:/]/)
          .slice(0, 2)
          .some((n) => /^\d+$/.test(n) && (Number(n) < 1 || Number(n) > 65535))
      )
        problems.push(`services.${name}.ports: ${p} is outside 1–65535`);
      const host = p.includes(':') ? p.split(':')[0] : null;
      if (host && hostPorts.has(host)) problems.push(`services.${name}.ports: host port ${host} already used by ${hostPorts.get(host)}`);
      if (host) hostPorts.set(host, name);
    }
    for (const v of svc.volumes ?? []) {
      const source = v.split(':')[0];
      if (!/^[./~]/.test(source) && !(source in volumes)) problems.push(`services.${name}.volumes: named volume ${source} is not declared under volumes`);
    }
    const text = JSON.stringify(svc);
    for (const m of text.matchAll(/\$\{([^}]*)\}/g))
      if (!/^[A-Z_][A-Z0-9_]*(:?-[^}]*)?$/.test(m[1])) problems.push(`services.${name}: bad variable \${${m[1]}}`);
  }
  return problems;
}

describe('docker-compose.yml', () => {
  const doc = YAML.parse(readFileSync(file, 'utf8'));
  const services = doc.services as Record<string, { command?: unknown; environment?: Record<string, string>; build?: unknown; image?: string }>;

  it('is a valid compose file: services, images, ports, health checks, dependencies, volumes', () => {
    expect(composeProblems(doc)).toEqual([]);
    // Where Docker Compose is installed, it must accept the file as well.
    if (spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0) {
      const r = spawnSync('docker', ['compose', '-f', file, 'config', '-q'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
    }
  });

  it('the validator rejects a broken file (so a broken docker-compose.yml fails the suite)', () => {
    const broken = structuredClone(doc);
    broken.services['pgshift-worker'].depends_on['no-such-db'] = { condition: 'service_healthy' };
    broken.services['temporal-ui'].ports = ['80800:8080'];
    broken.services['source-db'].healthcheck.interval = 'five seconds';
    delete broken.services['temporal-db'].image;
    broken.services['destination-db'].volumes = ['missing-volume:/data'];
    const problems = composeProblems(broken).join('\n');
    for (const expected of ['no-such-db', 'ports', 'interval', 'temporal-db: needs exactly one of image and build', 'missing-volume'])
      expect(problems).toContain(expected);
  });

  it('has Temporal with PostgreSQL persistence, its UI, both databases and a pgshift worker', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining(['temporal-db', 'temporal', 'temporal-setup', 'temporal-ui', 'source-db', 'destination-db', 'pgshift-worker']),
    );
    expect(services.temporal.environment!.DB).toBe('postgres12');
    expect(services.temporal.environment!.POSTGRES_SEEDS).toBe('temporal-db');
    expect(JSON.stringify(services['source-db'].command)).toContain('wal_level=logical');
    const setup = JSON.stringify(services['temporal-setup'].command);
    for (const sa of SEARCH_ATTRIBUTES.map((k) => k.name)) expect(setup).toContain(sa);
    expect(services['pgshift-worker'].build).toMatchObject({ dockerfile: 'worker/Dockerfile' });
  });

  it('takes every password from the environment, never literally', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [k, v] of Object.entries(svc.environment ?? {})) {
        if (/PASSWORD|PWD|_PW$/.test(k)) expect(String(v), `${name}.${k}`).toMatch(/^\$\{[A-Z_]+(:-[^}]*)?\}$/);
      }
    }
  });
});
