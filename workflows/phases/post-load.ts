// The phases after the data: sequences set from the source, then ANALYZE.
import { DONE, type PhaseContext, type PhaseOutcome } from './contract';

export async function runSequences({ config, state, acts, src, dst, heartbeatTimeout }: PhaseContext): Promise<PhaseOutcome> {
  const r = await acts.syncSequences.executeWithOptions({ startToCloseTimeout: '30m', heartbeatTimeout, summary: `set sequences on ${dst} from ${src}` }, [
    { config, runToken: state.runToken },
  ]);
  state.sequences = r.sequences;
  return DONE;
}

export async function runAnalyze({ config, acts, dst, heartbeatTimeout }: PhaseContext): Promise<PhaseOutcome> {
  await acts.analyzeTables.executeWithOptions({ startToCloseTimeout: '6h', heartbeatTimeout, summary: `ANALYZE the copied tables on ${dst}` }, [{ config }]);
  return DONE;
}
