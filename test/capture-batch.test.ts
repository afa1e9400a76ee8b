// Pure parts of change capture (no servers): WAL positions, the pgoutput
// decoder on hand-built messages, collapsing a batch to final states, and the
// SQL the apply builds.
import { describe, expect, it } from 'vitest';
import { TableBatch } from '../lib/capture/batch';
import { formatLsn, parseLsn } from '../lib/capture/lsn';
import { decodePgoutput, UNCHANGED } from '../lib/capture/pgoutput';
import { deleteSql, partialUpdateSql, textArrayLiteral, upsertSql, type ApplyTable } from '../lib/capture/sql';
// node-postgres' own conversion of a parameter (not in its typings).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { prepareValue } = require('pg/lib/utils') as { prepareValue: (v: unknown) => unknown };

const u8 = (n: number) => Buffer.from([n]);
const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};
const cstr = (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), u8(0)]);
const ch = (c: string) => Buffer.from(c, 'latin1');
const text = (s: string) => Buffer.concat([ch('t'), i32(Buffer.byteLength(s)), Buffer.from(s, 'utf8')]);

describe('WAL positions', () => {
  it('parse and format like pg_lsn, without floats', () => {
    expect(parseLsn('0/16B3748')).toBe(0x16b3748n);
    expect(formatLsn(parseLsn('FFFFFFFF/FFFFFFFF'))).toBe('FFFFFFFF/FFFFFFFF');
    expect(formatLsn(0x1_0000_0000n)).toBe('1/0');
    expect(() => parseLsn('1.5')).toThrow(/not a WAL position/);
  });
});

describe('pgoutput decoder', () => {
  it('keeps values as raw text, UNCHANGED apart from NULL', () => {
    const update = Buffer.concat([
      ch('U'),
      i32(16400),
      ch('K'),
      i16(3),
      text('1'),
      ch('n'),
      ch('n'),
      ch('N'),
      i16(3),
      text('2'),
      text('{"a": 1, "a": 2}'),
      ch('u'),
    ]);
    expect(decodePgoutput(update)).toEqual({
      tag: 'update',
      relationOid: 16400,
      oldKind: 'K',
      old: ['1', null, null],
      new: ['2', '{"a": 1, "a": 2}', UNCHANGED],
    });
    const insert = Buffer.concat([ch('I'), i32(1), ch('N'), i16(2), text('0044-03-15 BC'), text('12.500000000000000000001')]);
    expect(decodePgoutput(insert)).toEqual({ tag: 'insert', relationOid: 1, new: ['0044-03-15 BC', '12.500000000000000000001'] });
  });

  it('decodes begin, commit, relation and truncate', () => {
    expect(decodePgoutput(Buffer.concat([ch('B'), u64(0x1_0000_0010n), u64(5n), i32(77)]))).toEqual({
      tag: 'begin',
      finalLsn: 0x1_0000_0010n,
      commitTime: 5n,
      xid: 77,
    });
    expect(decodePgoutput(Buffer.concat([ch('C'), u8(0), u64(10n), u64(20n), u64(5n)]))).toEqual({
      tag: 'commit',
      commitLsn: 10n,
      endLsn: 20n,
      commitTime: 5n,
    });
    const rel = Buffer.concat([
      ch('R'),
      i32(9),
      cstr('app'),
      cstr('Mixed Case'),
      ch('d'),
      i16(2),
      u8(1),
      cstr('id'),
      i32(23),
      i32(-1),
      u8(0),
      cstr('b'),
      i32(1560),
      i32(8),
    ]);
    expect(decodePgoutput(rel)).toEqual({
      tag: 'relation',
      relationOid: 9,
      schema: 'app',
      name: 'Mixed Case',
      replicaIdentity: 'd',
      columns: [
        { name: 'id', key: true, typeOid: 23, typeMod: -1 },
        { name: 'b', key: false, typeOid: 1560, typeMod: 8 },
      ],
    });
    expect(decodePgoutput(Buffer.concat([ch('T'), i32(2), u8(3), i32(9), i32(10)]))).toEqual({
      tag: 'truncate',
      relationOids: [9, 10],
      cascade: true,
      restartIdentity: true,
    });
  });

  it('rejects what it cannot read exactly', () => {
    expect(() => decodePgoutput(Buffer.concat([ch('I'), i32(1), ch('N'), i16(1), ch('b'), i32(1), u8(0)]))).toThrow(/column kind "b"/);
    expect(() => decodePgoutput(Buffer.concat([ch('I'), i32(1), ch('N'), i16(1), text('x'), u8(0)]))).toThrow(/trailing bytes/);
    expect(() => decodePgoutput(Buffer.concat([ch('I'), i32(1), ch('N'), i16(2), text('x')]))).toThrow(/ends early/);
  });
});

describe('collapsing a batch', () => {
  const finals = (b: TableBatch) => [...b.finals.values()];

  it('keeps the final image per key; unchanged TOAST values come from the pre-batch row', () => {
    const b = new TableBatch([0], 't');
    b.add({ op: 'update', oldKey: null, values: ['1', 'a', UNCHANGED] });
    b.add({ op: 'update', oldKey: null, values: ['1', 'b', UNCHANGED] });
    b.add({ op: 'insert', values: ['2', 'x', 'big'] });
    b.add({ op: 'update', oldKey: null, values: ['2', 'y', UNCHANGED] });
    b.add({ op: 'insert', values: ['3', 'z', null] });
    b.add({ op: 'delete', oldKey: ['3'] });
    expect(finals(b)).toEqual([
      { kind: 'image', key: ['1'], values: ['1', 'b', UNCHANGED], origin: ['1'] },
      { kind: 'image', key: ['2'], values: ['2', 'y', 'big'], origin: null },
      { kind: 'delete', key: ['3'] },
    ]);
  });

  it('moves unchanged values with a key change, through chains and swaps', () => {
    const b = new TableBatch([0], 't');
    // 9 and 10 swap keys through -1, TOAST unchanged.
    b.add({ op: 'update', oldKey: ['9'], values: ['-1', 'n9', UNCHANGED] });
    b.add({ op: 'update', oldKey: ['10'], values: ['9', 'n10', UNCHANGED] });
    b.add({ op: 'update', oldKey: ['-1'], values: ['10', 'n9', UNCHANGED] });
    // 8 → 2008 → 3008 with an update in between.
    b.add({ op: 'update', oldKey: ['8'], values: ['2008', 'a', UNCHANGED] });
    b.add({ op: 'update', oldKey: null, values: ['2008', 'b', UNCHANGED] });
    b.add({ op: 'update', oldKey: ['2008'], values: ['3008', 'b', UNCHANGED] });
    const byKey = Object.fromEntries(finals(b).map((f) => [f.key[0], f]));
    expect(byKey['9']).toEqual({ kind: 'image', key: ['9'], values: ['9', 'n10', UNCHANGED], origin: ['10'] });
    expect(byKey['10']).toEqual({ kind: 'image', key: ['10'], values: ['10', 'n9', UNCHANGED], origin: ['9'] });
    expect(byKey['-1']).toEqual({ kind: 'delete', key: ['-1'] });
    expect(byKey['8']).toEqual({ kind: 'delete', key: ['8'] });
    expect(byKey['2008']).toEqual({ kind: 'delete', key: ['2008'] });
    expect(byKey['3008']).toEqual({ kind: 'image', key: ['3008'], values: ['3008', 'b', UNCHANGED], origin: ['8'] });
  });

  it('rejects an image without its key', () => {
    const b = new TableBatch([0], 'app.t');
    expect(() => b.add({ op: 'insert', values: [null, 'x'] })).toThrow(/app.t: key column 1 is NULL/);
  });
});

describe('apply statements', () => {
  const t: ApplyTable = {
    display: 'app."Weird"',
    source: { schema: 'app', table: 'Weird' },
    target: { schema: 'dst', table: 'we"ird' },
    columns: [
      { source: 'Id', target: 'id', type: 'bigint' },
      { source: 'v', target: 'value', type: 'bit(8)' },
      { source: 'doc', target: 'doc', type: 'text' },
    ],
    key: [0],
    sourceKeyTypes: ['bigint'],
    filter: null,
  };

  it('quotes every name and casts text parameters to the destination types', () => {
    expect(upsertSql(t)).toBe(
      'INSERT INTO "dst"."we""ird" ("id", "value", "doc") SELECT u."c0"::bigint, u."c1"::bit(8), u."c2"::text FROM unnest($1::text[], $2::text[], $3::text[]) AS u("c0", "c1", "c2") ' +
        'ON CONFLICT ("id") DO UPDATE SET "value" = EXCLUDED."value", "doc" = EXCLUDED."doc"',
    );
    expect(deleteSql(t)).toBe('DELETE FROM "dst"."we""ird" AS d USING unnest($1::text[]) AS u("c0") WHERE d."id" = u."c0"::bigint');
    expect(partialUpdateSql(t, [0, 1])).toBe(
      'UPDATE "dst"."we""ird" AS d SET "value" = u."c1"::bit(8) FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u("c0", "c1", "pgshift$i") WHERE d."id" = u."c0"::bigint RETURNING u."pgshift$i"::int AS i',
    );
  });

  it('evaluates a row filter over the source column names', () => {
    const f = { ...t, filter: `"Id" > 10` };
    const sql = upsertSql(f);
    expect(sql).toContain(`u."c0"::bigint AS "Id"`);
    expect(sql).toContain(`coalesce(("Id" > 10), false) AS "pgshift$keep"`);
    expect(sql).toMatch(/DELETE FROM "dst"."we""ird" AS d USING s WHERE NOT s."pgshift\$keep" AND d."id" = s."Id"$/);
    expect(partialUpdateSql(f, [0, 1])).toContain(`d."doc" AS "doc"`);
  });
});

describe('text[] parameters', () => {
  it('builds the array literal node-postgres would send', () => {
    const values = ['plain', '', 'with "quotes"', 'back\\slash', '\\"', 'NULL', null, 'comma, {brace}', 'ünïcode ✓', ' spaced '];
    expect(textArrayLiteral(values)).toBe(prepareValue(values));
    expect(textArrayLiteral([])).toBe(prepareValue([]));
    expect(textArrayLiteral([null])).toBe('{NULL}');
  });
});
