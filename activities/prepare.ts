// Pre-processing: control objects and the run's fencing token on the destination.
import type { Config } from '../lib/config';
import { withSession } from '../lib/io/session';
import { claimRun, ensureControlSchema } from './control';

export async function prepareDestination(input: { config: Config; runToken: string }): Promise<void> {
  await withSession(input.config, 'destination', 'prepare', async (c) => {
    await ensureControlSchema(c);
    await claimRun(c, input.config.name, input.runToken);
  });
}
