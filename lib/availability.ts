// What this version of pgshift can actually do with a config. A mode that is
// accepted by the config schema but not built yet is refused up front with the
// field to change, rather than silently doing less than asked (a migration
// that reports "done" having captured no change would lose every write made
// during the copy). Pure: the client checks before starting, the workflow
// checks again (a caller may start it directly).
import type { Config } from './config';

/** One line per configured mode this version cannot run; empty when it can run the config. */
export function unavailableModes(config: Pick<Config, 'mode'>): string[] {
  const out: string[] = [];
  if (config.mode.incremental) {
    out.push(
      'mode.incremental: change capture is not available in this version of pgshift yet, expected mode.incremental: false ' +
        '(a full migration: stop writes to the source while it runs); pgshift evaluate still checks what change capture will need',
    );
  }
  return out;
}
