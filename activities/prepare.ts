// Pre-processing: control objects and the run's fencing token on the destination.
import type { Config } from '../lib/config';
import { withClient } from '../lib/io/pg';
import { claimRun, ensureControlSchema } from './control';

export async function prepareDestination(input: { config: Config; runToken: string }): Promise<void> {
  await withClient(input.config, 'destination', async (c) => {
    await ensureControlSchema(c);
    await claimRun(c, input.config.name, input.runToken);
  }, 'pgshift prepare');
}

