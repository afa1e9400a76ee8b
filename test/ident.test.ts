// lib/ident.ts quotes without `pg` (workflow code uses it): it must quote exactly as node-postgres does.
import { escapeIdentifier, escapeLiteral } from 'pg';
import { describe, expect, it } from 'vitest';
import { ident, literal } from '../lib/ident';

const SAMPLES = ['plain', 'Mixed Case', 'a"b', "it's", 'back\\slash', 'x\'\\y"z', '', 'Ünïcødé', 'semi;colon--', '\\\\'];

describe('identifier and literal quoting', () => {
  it.each(SAMPLES)('quotes %j as node-postgres does', (s) => {
    expect(ident(s)).toBe(escapeIdentifier(s));
    expect(literal(s)).toBe(escapeLiteral(s));
  });
});
