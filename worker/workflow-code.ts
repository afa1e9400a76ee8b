// Which workflow code a worker runs. In a checkout: the workflow bundle built ahead
// (bin/bundle.js, dist/bundle/workflows.js) while it is fresh, so a start skips seconds of
// webpack; stale, it is rebuilt first (the next start is fast again), and when it cannot be
// stored (a read-only checkout) the SDK bundles the sources in memory, as it would without it.
// Never a stale bundle: workflow code that differs from the sources would break replay.
// Outside a checkout (the image's dist/): the compiled workflows, bundled by the SDK.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { startTrace } from '../lib/io/start-trace';

export type WorkflowCode = { workflowBundle: { codePath: string } } | { workflowsPath: string };

/** What worker code needs of bin/bundle.js (plain CommonJS, loaded from the checkout). */
interface BundleTool {
  paths(root: string): { workflows: string };
  workflowStaleness(root: string): string | null;
  buildWorkflows(root: string): Promise<number>;
}

/**
 * The checkout this module runs from: its sources (worker/), the CLI bundle (dist/bundle/) or
 * a tsc build inside one (dist/worker/). Null in an image, which holds no sources.
 */
export function checkoutRoot(from: string = __dirname): string | null {
  for (let dir = from, up = 0; up < 3; up++, dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'bin', 'bundle.js')) && existsSync(path.join(dir, 'workflows', 'index.ts'))) return dir;
  }
  return null;
}

export async function workflowCode(root: string | null = checkoutRoot()): Promise<WorkflowCode> {
  if (!root) return { workflowsPath: require.resolve(path.join(__dirname, '..', 'workflows')) };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tool = require(path.join(root, 'bin', 'bundle.js')) as BundleTool;
  const stale = tool.workflowStaleness(root);
  if (!stale) {
    startTrace('workflow bundle prebuilt');
    return { workflowBundle: { codePath: tool.paths(root).workflows } };
  }
  try {
    await tool.buildWorkflows(root);
  } catch (e) {
    startTrace(`workflow bundle from the sources (${stale}; not rebuilt: ${String((e as Error).message).split('\n')[0]})`);
    return { workflowsPath: path.join(root, 'workflows', 'index.ts') };
  }
  startTrace(`workflow bundle rebuilt (${stale})`);
  return { workflowBundle: { codePath: tool.paths(root).workflows } };
}
