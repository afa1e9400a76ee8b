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

describe('test harness', () => {
  it('starts and fully stops a Temporal dev server and PostgreSQL 15 and 18 clusters', async () => {
    const [server, pg15, pg18] = await Promise.all([
      startDevServer({ ui: false }),
      startCluster({ version: 15, label: 'harness' }),
      startCluster({ version: 18, label: 'harness' }),
    ]);
    const [{ v: v15 }] = await pg15.sql<{ v: string }>("SELECT current_setting('server_version_num') AS v");
    const [{ v: v18, wal }] = await pg18.sql<{ v: string; wal: string }>("SELECT current_setting('server_version_num') AS v, current_setting('wal_level') AS wal");
    expect(Number(v15)).toBeGreaterThanOrEqual(150000);
    expect(Number(v18)).toBeGreaterThanOrEqual(180000);
    expect(wal).toBe('logical');
    await Promise.all([server.stop(), pg15.stop(), pg18.stop()]);
    await assertStopped({ pids: [server.pid], ports: [server.ports[0], pg15.port, pg18.port], dataDirs: [pg15.dataDir, pg18.dataDir] });
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
    await expect(startOnFreePorts(async () => { calls++; throw new Error('could not bind IPv4 address: Address already in use'); })).rejects.toThrow(/already in use/);
    expect(calls).toBe(3);
    calls = 0;
    await expect(startOnFreePorts(async () => { calls++; throw new Error('initdb failed'); })).rejects.toThrow('initdb failed');
    expect(calls).toBe(1);
  });
});
