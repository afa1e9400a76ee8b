// Source pre-processing for change capture: control schema with heartbeat,
// publication of the selected tables, slot; idempotent; released cleanly.
import { describe, expect, it } from 'vitest';
import { prepareSource, releaseSource } from '../activities/capture/prepare-source';
import { readCapture } from '../activities/capture/control';
import { withSession } from '../lib/io/session';
import { ConfigError, parseConfig } from '../lib/io/config-load';
import { parseLsn } from '../lib/capture/lsn';
import { capturePair } from './harness/capture';

const SOURCE = `
CREATE SCHEMA app;
CREATE TABLE app.items (id int PRIMARY KEY, v text);
CREATE TABLE app.ukeyed (code text NOT NULL, v int, CONSTRAINT ukeyed_code UNIQUE (code));
CREATE TABLE app."Mixed Case" (id bigint PRIMARY KEY);
CREATE TABLE app.skipped (id int PRIMARY KEY)`;

describe('prepareSource / releaseSource', () => {
  it('creates heartbeat, publication and slot once, records the consistent point, and releases everything twice over', async () => {
    const pair = await capturePair();
    await pair.sourceAsRole(SOURCE);
    const config = pair.config({ objects: { schemas: ['app'], exclude: ['app.skipped'] } });

    const first = await prepareSource({ config, runToken: pair.runToken });
    expect(first).toMatchObject({
      slotName: `pgshift_${pair.name}`,
      publication: `pgshift_${pair.name}`,
      createdSlot: true,
      tables: ['app."Mixed Case"', 'app.items', 'app.ukeyed'],
      replicaIdentitySet: ['app.ukeyed'],
    });
    expect(parseLsn(first.startLsn) <= parseLsn(first.readyLsn)).toBe(true);

    const slots = await pair.source.sql<{ slot_name: string; plugin: string; confirmed: string }>(
      `SELECT slot_name, plugin, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE database = current_database()`,
    );
    expect(slots).toEqual([{ slot_name: first.slotName, plugin: 'pgoutput', confirmed: first.startLsn }]);
    const published = await pair.source.sql<{ t: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`,
      [first.publication],
    );
    expect(published.map((r) => r.t)).toEqual(['app."Mixed Case"', 'app.items', 'app.ukeyed', 'pgshift.heartbeat']);
    const ident = await pair.source.sql<{ r: string }>(`SELECT relreplident::text AS r FROM pg_class WHERE oid = 'app.ukeyed'::regclass`);
    expect(ident).toEqual([{ r: 'i' }]);
    const beat = await pair.source.sql<{ migration: string }>('SELECT migration FROM pgshift.heartbeat');
    expect(beat).toEqual([{ migration: pair.name }]);

    const recorded = await withSession(config, 'destination', 'verify', (c) => readCapture(c, config.name));
    expect(recorded).toMatchObject({ slotName: first.slotName, startLsn: first.startLsn, appliedLsn: first.startLsn });

    // A retry (after the source moved on) reuses the slot and returns the same consistent point.
    await pair.source.sql('INSERT INTO app.items VALUES (1, $1)', ['after the slot']);
    const again = await prepareSource({ config, runToken: pair.runToken });
    expect(again).toMatchObject({ createdSlot: false, startLsn: first.startLsn });
    expect(await pair.source.sql(`SELECT 1 FROM pg_replication_slots WHERE database = current_database()`)).toHaveLength(1);

    // A stale run may not record anything on the destination.
    await expect(prepareSource({ config, runToken: 'stale' })).rejects.toThrow(/fenced/);

    expect(await releaseSource({ config })).toEqual({ droppedSlot: true, droppedPublication: true, droppedSchema: true, fence: 'none' });
    expect(await releaseSource({ config })).toEqual({ droppedSlot: false, droppedPublication: false, droppedSchema: false, fence: 'none' });
    expect(await pair.source.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [first.slotName])).toHaveLength(0);
    expect(await pair.source.sql(`SELECT 1 FROM pg_namespace WHERE nspname = 'pgshift'`)).toHaveLength(0);
  });

  it('uses incremental.slotName and explains missing privileges', async () => {
    const pair = await capturePair();
    await pair.sourceAsRole(`CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY)`);
    await pair.source.sql(`CREATE TABLE app.not_owned (id int PRIMARY KEY)`);
    const slotName = `custom_${pair.name}`;
    const config = pair.config({ objects: { schemas: ['app'], exclude: ['app.not_owned'] }, incremental: { slotName } });
    const r = await prepareSource({ config, runToken: pair.runToken });
    expect(r.slotName).toBe(slotName);
    expect(await pair.source.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [slotName])).toHaveLength(1);
    await releaseSource({ config });

    const wide = pair.config({ objects: { schemas: ['app'] }, incremental: { slotName } });
    await expect(prepareSource({ config: wide, runToken: pair.runToken })).rejects.toThrow(
      /must be owner of table not_owned .* the source role must own the selected tables/,
    );
    expect(await pair.source.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [slotName])).toHaveLength(0);
    await releaseSource({ config: wide });
  });

  it('rejects an illegal slot name in the config', () => {
    const pairless = { name: 'x', source: { host: 'h', database: 'd', user: 'u' }, destination: { host: 'h', database: 'd', user: 'u' } };
    try {
      parseConfig({ ...pairless, incremental: { slotName: 'Bad-Name' } });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as { problems: string[] }).problems.join('\n')).toMatch(/incremental\.slotName.*legal replication slot name/);
    }
  });
});
