// The harness itself: what it starts, it stops — processes gone, ports free,
// data directories removed — and the temporal binary is found by absolute path.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCluster } from '../dev/postgres';
import { startOnFreePorts } from '../dev/ports';
import { resolveTemporalCli, startDevServer } from '../dev/temporal';
import { assertStopped } from './harness/leftovers';
import { clusters, makePair } from './harness/env';
import { connect } from '../lib/io/pg';

describe('test harness', () => {
  it('starts and fully stops a Temporal dev server and PostgreSQL 15 and 18 clusters', async () => {
    const [server, pg15, pg18] = await Promise.all([
      startDevServer({ ui: false }),
      startCluster({ version: 15, label: 'harness' }),
      startCluster({ version: 18, label: 'harness' }),
    ]);
    const [{ v: v15 }] = await pg15.sql<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    const [{ v: v18, wal }] = await pg18.sql<{ v: string; wal: string }>(
      "SELECT current_setting('server_version_num') AS v, current_setting('wal_level') AS wal",
    );
    expect(Number(v15)).toBeGreaterThanOrEqual(150000);
    expect(Number(v18)).toBeGreaterThanOrEqual(180000);
    expect(wal).toBe('logical');
    await Promise.all([server.stop(), pg15.stop(), pg18.stop()]);
    await assertStopped({ pids: [server.pid], ports: [server.ports[0], pg15.port, pg18.port], dataDirs: [pg15.dataDir, pg18.dataDir] });
  });

  it("runs PostgreSQL 11 and 14 for the suite, where the suite's roles log in with passwords and read what they should", async () => {
    const pair = await makePair({ source: clusters().pg11, destination: clusters().pg14 });
    const [{ v: v11, wal }] = await pair.source.cluster.sql<{ v: string; wal: string }>(
      "SELECT current_setting('server_version_num') AS v, current_setting('wal_level') AS wal",
    );
    const [{ v: v14 }] = await pair.destination.cluster.sql<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    expect(Number(v11)).toBeGreaterThanOrEqual(110000);
    expect(Number(v11)).toBeLessThan(120000);
    expect(Number(v14)).toBeGreaterThanOrEqual(140000);
    expect(Number(v14)).toBeLessThan(150000);
    expect(wal).toBe('logical');
    await pair.source.sql('CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY)');
    // The migration roles connect over TCP with their passwords and see what they need.
    const cfg = pair.config();
    for (const side of ['source', 'destination'] as const) {
      const c = await connect(cfg, side);
      try {
        if (side === 'source') expect((await c.query('SELECT count(*)::int AS n FROM app.t')).rows[0].n).toBe(0);
        else expect((await c.query('SELECT current_user AS u')).rows[0].u).toBe(pair.destination.user);
      } finally {
        await c.end();
      }
    }
  });

  it('detects a leftover process or port', async () => {
    const pg = await startCluster({ version: 15, label: 'leftover' });
    await expect(assertStopped({ pids: [], ports: [pg.port], dataDirs: [] })).rejects.toThrow(/still accepts connections/);
    await pg.stop();
    await assertStopped({ pids: [], ports: [pg.port], dataDirs: [pg.dataDir] });
  });

  it('resolves the temporal CLI to an absolute path, TEMPORAL_CLI_PATH first', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pgshift-cli-'));
    const fake = path.join(dir, 'temporal');
    writeFileSync(fake, '#!/bin/sh\n');
    chmodSync(fake, 0o755);
    const saved = process.env.TEMPORAL_CLI_PATH;
    try {
      process.env.TEMPORAL_CLI_PATH = fake;
      expect(resolveTemporalCli()).toBe(fake);
      delete process.env.TEMPORAL_CLI_PATH;
      expect(path.isAbsolute(resolveTemporalCli())).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.TEMPORAL_CLI_PATH;
      else process.env.TEMPORAL_CLI_PATH = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('startOnFreePorts', () => {
  it('starts again when the chosen port was taken meanwhile, and only then', async () => {
    let calls = 0;
    const flaky = async () => {
      if (++calls < 3) throw new Error('listen tcp 127.0.0.1:40681: bind: address already in use');
      return 'up';
    };
    expect(await startOnFreePorts(flaky)).toBe('up');
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      startOnFreePorts(async () => {
        calls++;
        throw new Error('could not bind IPv4 address: Address already in use');
      }),
    ).rejects.toThrow(/already in use/);
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      startOnFreePorts(async () => {
        calls++;
        throw new Error('initdb failed');
      }),
    ).rejects.toThrow('initdb failed');
    expect(calls).toBe(1);
  });
});
