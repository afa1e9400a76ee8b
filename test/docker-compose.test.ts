// docker-compose.yml describes the production-shaped stack; checked here by
// reading it, and by `docker compose config -q` where Docker Compose exists.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';

const root = path.resolve(__dirname, '..');
const file = path.join(root, 'docker-compose.yml');

describe('docker-compose.yml', () => {
  const doc = YAML.parse(readFileSync(file, 'utf8'));
  const services = doc.services as Record<string, { command?: unknown; environment?: Record<string, string>; build?: unknown; image?: string }>;

  it('has Temporal with PostgreSQL persistence, its UI, both databases and a pgshift worker', () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining(['temporal-db', 'temporal', 'temporal-setup', 'temporal-ui', 'source-db', 'destination-db', 'pgshift-worker']),
    );
    expect(services.temporal.environment!.DB).toBe('postgres12');
    expect(services.temporal.environment!.POSTGRES_SEEDS).toBe('temporal-db');
    expect(JSON.stringify(services['source-db'].command)).toContain('wal_level=logical');
    const setup = JSON.stringify(services['temporal-setup'].command);
    for (const sa of ['PgshiftPhase', 'PgshiftSource', 'PgshiftDestination', 'PgshiftEnvironment']) expect(setup).toContain(sa);
    expect(services['pgshift-worker'].build).toMatchObject({ dockerfile: 'worker/Dockerfile' });
  });

  it('takes every password from the environment, never literally', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [k, v] of Object.entries(svc.environment ?? {})) {
        if (/PASSWORD|PWD|_PW$/.test(k)) expect(String(v), `${name}.${k}`).toMatch(/^\$\{[A-Z_]+(:-[^}]*)?\}$/);
      }
    }
  });

  it('is valid for docker compose (when Docker Compose is installed)', () => {
    const compose = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
    if (compose.status !== 0) {
      console.log('docker compose is not installed here: checked the file structure only');
      expect(services).toBeTruthy();
      return;
    }
    const r = spawnSync('docker', ['compose', '-f', file, 'config', '-q'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
  });
});
