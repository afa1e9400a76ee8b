// The one schema of a pgshift config file. Field names are public:
// extend, never rename. Secrets are referenced (passwordEnv / passwordFile),
// never carried, so the parsed config is safe to put in workflow input.
import { z } from 'zod';
import { NameSyntaxError, parseQualifiedName } from './ident';
import { PRECHECK_IDS } from './precheck-catalog';

const positiveOrNull = (what: string) =>
  z
    .number({ error: `expected a positive number of ${what} or null (no limit)` })
    .positive({ error: `expected a positive number of ${what} or null (no limit)` })
    .nullable()
    .default(null);

const intInRange = (min: number, max: number, def: number, unit: string) =>
  z
    .number({ error: `expected a whole number of ${unit} between ${min} and ${max}` })
    .int({ error: `expected a whole number of ${unit} between ${min} and ${max}` })
    .min(min, { error: `expected a whole number of ${unit} between ${min} and ${max}` })
    .max(max, { error: `expected a whole number of ${unit} between ${min} and ${max}` })
    .default(def);

export const Endpoint = z
  .strictObject({
    host: z.string().min(1).describe('Host name or IP address of the server'),
    port: z.number().int().min(1).max(65535).default(5432).describe('TCP port'),
    database: z.string().min(1).describe('Database to migrate from / into (one database per migration)'),
    user: z.string().min(1).describe('Role to connect as (source: REPLICATION + read; destination: database owner)'),
    passwordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected an environment variable name like SRC_PW' })
      .optional()
      .describe('Name of the environment variable, on the worker, holding the password'),
    passwordFile: z.string().min(1).optional().describe('Path, on the worker, of a file holding the password'),
    sslMode: z.enum(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']).default('prefer').describe('TLS to the server, as libpq sslmode'),
    sslRootCertFile: z.string().min(1).optional().describe('CA bundle for verify-ca / verify-full'),
  })
  .superRefine((e, ctx) => {
    if (e.passwordEnv && e.passwordFile) {
      ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'set only one of passwordEnv and passwordFile' });
    }
  });
export type Endpoint = z.infer<typeof Endpoint>;

const qualifiedKey = (parts: number) =>
  z.string().superRefine((s, ctx) => {
    try {
      parseQualifiedName(s, parts);
    } catch (e) {
      if (!(e instanceof NameSyntaxError)) throw e;
      ctx.addIssue({ code: 'custom', message: e.message });
    }
  });

/** z.record with keys checked as qualified names; the issue path names the key. */
const qualifiedRecord = <V extends z.ZodType>(parts: number, value: V) =>
  z.record(z.string(), value).superRefine((rec, ctx) => {
    for (const key of Object.keys(rec)) {
      try {
        parseQualifiedName(key, parts);
      } catch (e) {
        if (!(e instanceof NameSyntaxError)) throw e;
        ctx.addIssue({ code: 'custom', path: [key], message: e.message });
      }
    }
  });

const Objects = z
  .strictObject({
    schemas: z
      .array(z.string().min(1))
      .min(1, { error: 'expected at least one schema name' })
      .default(['public'])
      .describe('Schemas to migrate, names exactly as in the catalog'),
    include: z.array(qualifiedKey(2)).default([]).describe('Tables to migrate (schema.table); empty means every table of the schemas'),
    exclude: z.array(qualifiedKey(2)).default([]).describe('Tables to leave out (schema.table)'),
    rename: z
      .strictObject({
        schemas: z.record(z.string(), z.string().min(1)).default({}).describe('Source schema → destination schema'),
        tables: qualifiedRecord(2, qualifiedKey(2)).default({}).describe('schema.table → schema.table on the destination'),
        columns: qualifiedRecord(3, z.string().min(1)).default({}).describe('schema.table.column (source names) → new column name'),
      })
      .default({ schemas: {}, tables: {}, columns: {} })
      .describe('Name mapping applied to schema, data and changes'),
    filters: qualifiedRecord(2, z.string().min(1)).default({}).describe('schema.table → SQL condition; only matching rows are migrated'),
    nameCase: z.enum(['keep', 'lower', 'upper']).default('keep').describe('Case of schema, table and column names on the destination'),
    triggers: z
      .boolean()
      .default(false)
      .describe('Create the source triggers on the destination after the data (they never fire during sync); off: reported only'),
    ownership: z.boolean().default(false).describe('Copy owners and GRANTs of migrated objects (the roles must exist on the destination)'),
  })
  .default({
    schemas: ['public'],
    include: [],
    exclude: [],
    rename: { schemas: {}, tables: {}, columns: {} },
    filters: {},
    nameCase: 'keep',
    triggers: false,
    ownership: false,
  });

export const Config = z
  .strictObject({
    name: z
      .string({ error: 'expected a migration name' })
      .regex(/^[a-z0-9][a-z0-9_]{0,47}$/, {
        error: 'expected lower-case letters, digits and _ (at most 48; it names the workflow pgshift-<name> and the slot pgshift_<name>)',
      })
      .describe('Migration name: workflow id pgshift-<name>, replication slot pgshift_<name>'),
    source: Endpoint.describe('Source database'),
    destination: Endpoint.describe('Destination database'),
    mode: z
      .strictObject({
        schema: z.boolean().default(true).describe('Migrate the schema'),
        full: z.boolean().default(true).describe('Copy the existing rows'),
        incremental: z.boolean().default(true).describe('Capture and apply changes until cutover (the slot is made before the copy)'),
      })
      .default({ schema: true, full: true, incremental: true })
      .refine((m) => m.schema || m.full || m.incremental, { error: 'expected at least one of schema, full, incremental to be true' })
      .describe('What the migration does'),
    objects: Objects.describe('Which objects to migrate and how to name them'),
    existingTargetTables: z
      .enum(['precheck-error', 'ignore'])
      .default('precheck-error')
      .describe('precheck-error: fail when a table exists on the destination; ignore: keep its rows in full load, overwrite them in incremental'),
    precheck: z
      .strictObject({
        longTransactionSeconds: z
          .number()
          .int()
          .positive()
          .default(300)
          .describe('Source transactions open longer than this are reported (they delay the slot and hold back WAL)'),
      })
      .default({ longTransactionSeconds: 300 })
      .describe('Precheck thresholds'),
    acknowledgeWarnings: z
      .array(z.enum(PRECHECK_IDS as [string, ...string[]], { error: `expected precheck ids: ${PRECHECK_IDS.join(', ')}` }))
      .default([])
      .describe('Precheck warning ids the operator accepts'),
    retry: z
      .strictObject({
        connectionMinutes: intInRange(10, 1440, 720, 'minutes').describe('How long connection failures are retried (10–1,440)'),
        otherMinutes: intInRange(1, 1440, 10, 'minutes').describe('How long other (DDL/DML) failures are retried (1–1,440, below connectionMinutes)'),
      })
      .default({ connectionMinutes: 720, otherMinutes: 10 })
      .superRefine((r, ctx) => {
        if (r.otherMinutes >= r.connectionMinutes) {
          ctx.addIssue({
            code: 'custom',
            path: ['otherMinutes'],
            message: `${r.otherMinutes} is not smaller than connectionMinutes (${r.connectionMinutes}), expected a smaller window`,
          });
        }
      })
      .describe('Retry windows'),
    throttle: z
      .strictObject({
        fullRowsPerSecond: positiveOrNull('rows per second').describe('Full-load row rate limit'),
        fullMbPerSecond: positiveOrNull('MB per second').describe('Full-load byte rate limit'),
        incrementalRowsPerSecond: positiveOrNull('rows per second').describe('Change-apply row rate limit'),
      })
      .default({ fullRowsPerSecond: null, fullMbPerSecond: null, incrementalRowsPerSecond: null })
      .describe('Rate limits, changeable while running (pgshift throttle)'),
    parallelism: z
      .strictObject({
        tables: intInRange(1, 64, 4, 'parallel copies').describe('Chunks copied at the same time'),
        indexes: intInRange(1, 64, 2, 'parallel builds').describe('Indexes built at the same time'),
      })
      .default({ tables: 4, indexes: 2 })
      .describe('Parallelism'),
    fullLoad: z
      .strictObject({
        chunkMb: z
          .number()
          .int()
          .min(1, { error: 'expected a whole number of MB, at least 1' })
          .max(65536)
          .default(1024)
          .describe(
            "Largest size of one copy chunk (one source transaction, the unit of retry): a larger table is split into key ranges copied in parallel; so is a table larger than one lane's share of the load (all tables over parallelism.tables), so that no lane copies alone at the end",
          ),
        toastCompression: z
          .enum(['lz4', 'server-default'])
          .default('lz4')
          .describe(
            'Compression of large (TOASTed) values written by the full load, for columns without their own setting: lz4 is several times faster than pglz; server-default keeps the destination default_toast_compression',
          ),
      })
      .default({ chunkMb: 1024, toastCompression: 'lz4' })
      .describe('Full data load'),
    incremental: z
      .strictObject({
        slotName: z
          .string({ error: 'expected a replication slot name or null (default pgshift_<name>)' })
          .regex(/^[a-z0-9_]{1,63}$/, {
            error: 'expected a legal replication slot name: 1 to 63 lower-case letters, digits and _ (or null for pgshift_<name>)',
          })
          .nullable()
          .default(null)
          .describe('Logical replication slot on the source; null means pgshift_<name>'),
      })
      .default({ slotName: null })
      .describe('Change capture'),
    verification: z
      .strictObject({
        full: z.boolean().default(true).describe('Compare every row after the full load'),
        incremental: z.boolean().default(true).describe('Continuously compare recently changed rows'),
        incrementalRowsPerSecond: z
          .number()
          .int()
          .positive()
          .nullable()
          .default(2000)
          .describe(
            'Budget of incremental verification: changed rows queued and compared per second at most; over it the changes are sampled (status says so); null compares every changed row',
          ),
        schema: z.boolean().default(true).describe('Compare catalogs after schema migration'),
      })
      .default({ full: true, incremental: true, incrementalRowsPerSecond: 2000, schema: true })
      .describe('Data verification modes'),
    cutover: z
      .strictObject({
        maxLagSeconds: z.number().nonnegative().default(5).describe('Cutover is refused while lag is above this'),
        fence: z
          .enum(['none', 'read-only'])
          .default('none')
          .describe(
            'Write fence put on the source at cutover: read-only makes new transactions of the source database read-only for every role and ends the sessions that could still write',
          ),
        graceSeconds: intInRange(0, 3600, 10, 'seconds').describe('How long the fence waits for open source transactions before ending them (0–3,600)'),
        verify: z
          .enum(['changed', 'full', 'none'])
          .default('changed')
          .describe(
            'Final data verification at cutover: changed = what changed since the last full verification (the full verification when none ran yet), full, or none',
          ),
        maxDowntimeSeconds: positiveOrNull('seconds').describe(
          'Refuse to fence when the estimated write downtime (drain + sequences + verification) exceeds this',
        ),
      })
      .default({ maxLagSeconds: 5, fence: 'none', graceSeconds: 10, verify: 'changed', maxDowntimeSeconds: null })
      .describe('Cutover'),
    abort: z
      .strictObject({
        dropCreatedObjects: z
          .boolean()
          .default(false)
          .describe('On abort, drop the objects this migration created on the destination (never pre-existing ones); default keep them'),
      })
      .default({ dropCreatedObjects: false })
      .describe('What abort does on the destination besides fencing it'),
    alerts: z
      .strictObject({
        lagSeconds: z.number().positive().default(30).describe('Alert when lag exceeds this'),
        webhookUrl: z.url({ error: 'expected an http(s) URL or null' }).nullable().default(null).describe('POSTed a JSON alert'),
      })
      .default({ lagSeconds: 30, webhookUrl: null })
      .describe('Monitoring and alerting'),
    environmentTag: z.string().max(64).default('').describe('Free label (production, staging, …) shown in the UI'),
    taskQueue: z.string().min(1).default('pgshift').describe('Temporal task queue of the workers (a dedicated one isolates a migration)'),
  })
  .superRefine((c, ctx) => {
    // A table both included and excluded is a contradiction, not a preference.
    for (const [i, t] of c.objects.include.entries()) {
      if (c.objects.exclude.includes(t)) {
        ctx.addIssue({ code: 'custom', path: ['objects', 'include', i], message: `${t} is also in objects.exclude, expected it in only one of them` });
      }
    }
  });

export type Config = z.infer<typeof Config>;
export type ConfigInput = z.input<typeof Config>;
