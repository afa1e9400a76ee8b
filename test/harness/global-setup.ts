// One Temporal dev server and a set of PostgreSQL clusters for the whole suite
// (PostgreSQL 15 as source, 18 and 15 as destinations, so one pair crosses
// major versions; 11 as source and 14 as destination, the engine generations
// of the managed service's pair). Test files get their coordinates through `inject()` and
// create their own databases and roles on them. Teardown stops everything and
// fails the run if a process or port of the suite is left behind.
import path from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { type ClusterRef, type LocalCluster, startCluster, stopAllRegisteredClusters } from '../../dev/postgres';
import { type DevServer, PROJECT_ROOT, startDevServer } from '../../dev/temporal';
import { assertStopped } from './leftovers';

declare module 'vitest' {
  export interface ProvidedContext {
    temporal: { address: string; namespace: string; uiUrl: string };
    pg15: ClusterRef;
    pg18: ClusterRef;
    pg15b: ClusterRef;
    pg11: ClusterRef;
    pg14: ClusterRef;
    workflowBundlePath: string;
  }
}

const ref = (c: LocalCluster): ClusterRef => ({ version: c.version, host: c.host, port: c.port, password: c.password });

export default async function setup(project: TestProject) {
  await stopAllRegisteredClusters(); // leftovers of a crashed earlier run
  const started: { server?: DevServer; clusters: LocalCluster[] } = { clusters: [] };
  const teardown = async () => {
    const ports = [...(started.server?.ports ?? []), ...started.clusters.map((c) => c.port)];
    await Promise.all([started.server?.stop(), ...started.clusters.map((c) => c.stop())]);
    await stopAllRegisteredClusters();
    await assertStopped({ pids: started.server ? [started.server.pid] : [], ports, dataDirs: started.clusters.map((c) => c.dataDir) });
  };
  try {
    const [server, pg15, pg18, pg15b, pg11, pg14, bundle] = await Promise.all([
      startDevServer(),
      startCluster({ version: 15, label: 'src' }),
      startCluster({ version: 18, label: 'dst' }),
      startCluster({ version: 15, label: 'dst15' }),
      startCluster({ version: 11, label: 'src11' }),
      startCluster({ version: 14, label: 'dst14' }),
      bundleWorkflowCode({ workflowsPath: path.join(PROJECT_ROOT, 'workflows', 'index.ts'), logger: quietLogger }),
    ]);
    started.server = server;
    started.clusters.push(pg15, pg18, pg15b, pg11, pg14);
    const dir = path.join(PROJECT_ROOT, '.tmp');
    mkdirSync(dir, { recursive: true });
    const workflowBundlePath = path.join(dir, 'workflow-bundle.js');
    writeFileSync(workflowBundlePath, bundle.code);
    project.provide('temporal', { address: server.address, namespace: server.namespace, uiUrl: server.uiUrl });
    project.provide('pg15', ref(pg15));
    project.provide('pg18', ref(pg18));
    project.provide('pg15b', ref(pg15b));
    project.provide('pg11', ref(pg11));
    project.provide('pg14', ref(pg14));
    project.provide('workflowBundlePath', workflowBundlePath);
  } catch (e) {
    await teardown();
    throw e;
  }
  return teardown;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m: string) => console.warn(m),
  error: (m: string) => console.error(m),
};
