// Schema verification (SPEC §2 row 9): compare source and destination catalogs.
import type { Config } from '../lib/config';
import type { SchemaVerification } from '../lib/migration-state';

export async function verifySchema(_input: { config: Config }): Promise<SchemaVerification> {
  throw new Error('verifySchema is not implemented yet');
}
