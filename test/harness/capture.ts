// Change-capture test setup: a source/destination pair where the source role
// owns the tables it publishes (PostgreSQL requires it for a publication) and
// may create the control schema, and the destination role may set
// session_replication_role; the run is claimed on the destination.
import type { ConfigInput } from '../../lib/config';
import { prepareDestination } from '../../activities/prepare';
import { type ClusterHandle } from '../../dev/postgres';
import { makePair, uid, type Pair } from './env';

export interface CapturePair extends Pair {
  runToken: string;
  config: Pair['config'];
  /** SQL on the source as the migration's source role (so it owns what it creates). */
  sourceAsRole(sql: string): Promise<void>;
  /** SQL on the destination as the destination role. */
  destinationAsRole(sql: string): Promise<void>;
}

/** `sourceRoleOptions`: e.g. 'SUPERUSER REPLICATION' for DDL capture (event triggers need a superuser). */
export async function capturePair(opts: { source?: ClusterHandle; destination?: ClusterHandle; sourceRoleOptions?: string } = {}): Promise<CapturePair> {
  const pair = await makePair(opts);
  await pair.source.sql(`GRANT CREATE ON DATABASE ${pair.name} TO ${pair.source.user}`);
  if (pair.destination.cluster.version >= 15) {
    // Parallel test files grant on the same cluster: the first grant creates the parameter's ACL row (a shared
    // catalog), so take turns — until the grant commits (one implicit transaction: the transaction-level lock is
    // released at its commit). Advisory locks are per database: every grant takes it in the same one, postgres.
    await pair.destination.cluster.sql(
      `SELECT pg_advisory_xact_lock(hashtext('pgshift test parameter grant')); GRANT SET ON PARAMETER session_replication_role TO ${pair.destination.user}`,
      'postgres',
    );
  }
  const runToken = `run-${uid()}`;
  const asRole = (side: Pair['source'], sql: string) => side.sql(`SET ROLE ${side.user}; ${sql}; RESET ROLE`).then(() => undefined);
  const cp: CapturePair = {
    ...pair,
    runToken,
    sourceAsRole: (sql) => asRole(pair.source, sql),
    destinationAsRole: (sql) => asRole(pair.destination, sql),
  };
  await prepareDestination({ config: pair.config(), runToken });
  return cp;
}

export type Overrides = Partial<ConfigInput>;
