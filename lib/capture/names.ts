// Names of the change-capture objects a migration creates on the source.
import type { Config } from '../config';
import { slotName } from '../migration-ids';

/** The logical replication slot: incremental.slotName, else pgshift_<name>. */
export const captureSlotName = (config: Pick<Config, 'name' | 'incremental'>): string => config.incremental.slotName ?? slotName(config.name);

/** The publication of the selected tables and the heartbeat table. */
export const publicationName = (config: Pick<Config, 'name'>): string => `pgshift_${config.name}`;

/** Source control schema and its heartbeat table (one row per migration, source clock). */
export const SOURCE_CONTROL_SCHEMA = 'pgshift';
export const HEARTBEAT_TABLE = 'heartbeat';
