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

/** The DDL log (in the publication: its rows arrive in stream order) and the last captured shape of each table (not published). */
export const DDL_LOG_TABLE = 'ddl_log';
export const DDL_SHAPE_TABLE = 'ddl_shape';

/** The migration's DDL capture function and its two event triggers on the source. */
export const ddlCaptureNames = (config: Pick<Config, 'name'>) => ({
  fn: `ddl_capture_${config.name}`,
  endTrigger: `pgshift_ddl_${config.name}`,
  dropTrigger: `pgshift_ddl_drop_${config.name}`,
});
