// SQL text produced by the server's deparse functions, as tokens. Renames are
// applied to identifier tokens, never to strings, comments or dollar-quoted
// bodies, so a rename can never change a value or a function body.

export type TokenType = 'space' | 'comment' | 'ident' | 'qident' | 'string' | 'dollar' | 'number' | 'param' | 'op';

export interface Token {
  type: TokenType;
  text: string;
}

const IDENT_START = /[A-Za-z_\u0080-\uffff]/;
const IDENT_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const OP_CHARS = '+-*/<>=~!@#%^&|`?';

function scanQuoted(s: string, i: number, quote: string, backslash: boolean): number {
  let j = i + 1;
  while (j < s.length) {
    if (backslash && s[j] === '\\') {
      j += 2;
      continue;
    }
    if (s[j] === quote) {
      if (s[j + 1] === quote) {
        j += 2;
        continue;
      }
      return j + 1;
    }
    j++;
  }
  return s.length;
}

function scanBlockComment(s: string, i: number): number {
  let depth = 0;
  let j = i;
  while (j < s.length) {
    if (s.startsWith('/*', j)) {
      depth++;
      j += 2;
    } else if (s.startsWith('*/', j)) {
      depth--;
      j += 2;
      if (depth === 0) return j;
    } else j++;
  }
  return s.length;
}

export function lex(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const push = (type: TokenType, end: number) => {
    out.push({ type, text: s.slice(i, end) });
    i = end;
  };
  while (i < s.length) {
    const c = s[i];
    const rest = s.slice(i, i + 3);
    if (/\s/.test(c)) {
      let j = i + 1;
      while (j < s.length && /\s/.test(s[j])) j++;
      push('space', j);
    } else if (s.startsWith('--', i)) {
      const j = s.indexOf('\n', i);
      push('comment', j < 0 ? s.length : j);
    } else if (s.startsWith('/*', i)) {
      push('comment', scanBlockComment(s, i));
    } else if (c === "'") {
      push('string', scanQuoted(s, i, "'", false));
    } else if (/^[EeBbXxNn]'/.test(rest)) {
      push('string', scanQuoted(s, i + 1, "'", /^[Ee]/.test(c)));
    } else if (/^[Uu]&['"]/.test(rest)) {
      // Unicode escapes: kept opaque (a qident we cannot compare is never renamed).
      push(rest[2] === "'" ? 'string' : 'op', scanQuoted(s, i + 2, rest[2], false));
    } else if (c === '"') {
      push('qident', scanQuoted(s, i, '"', false));
    } else if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(s.slice(i));
      const p = /^\$[0-9]+/.exec(s.slice(i));
      if (m) {
        const end = s.indexOf(m[0], i + m[0].length);
        push('dollar', end < 0 ? s.length : end + m[0].length);
      } else if (p) push('param', i + p[0].length);
      else push('op', i + 1);
    } else if (IDENT_START.test(c)) {
      let j = i + 1;
      while (j < s.length && IDENT_PART.test(s[j])) j++;
      push('ident', j);
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(s[i + 1] ?? ''))) {
      const m = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(s.slice(i))!;
      push('number', i + m[0].length);
    } else if (s.startsWith('::', i)) {
      push('op', i + 2);
    } else if (OP_CHARS.includes(c)) {
      let j = i + 1;
      while (j < s.length && OP_CHARS.includes(s[j]) && !s.startsWith('--', j) && !s.startsWith('/*', j)) j++;
      push('op', j);
    } else {
      push('op', i + 1);
    }
  }
  return out;
}

/** Offset of the `USING` of a pg_get_indexdef text: what follows is the index itself, before it its name and table. */
export function indexUsingOffset(def: string): number {
  let pos = 0;
  for (const t of lex(def)) {
    if (t.type === 'ident' && t.text === 'USING') return pos;
    pos += t.text.length;
  }
  return -1;
}

/** The catalog name an identifier token denotes (unquoted names fold to lower case). */
export function identName(t: Token): string {
  return t.type === 'qident' ? t.text.slice(1, -1).replace(/""/g, '"') : t.text.toLowerCase();
}

export const isIdent = (t: Token | undefined): t is Token => !!t && (t.type === 'ident' || t.type === 'qident');

/** Value of a plain '...' literal, or null for other string forms. */
export function stringValue(t: Token): string | null {
  if (t.type !== 'string' || !t.text.startsWith("'")) return null;
  return t.text.slice(1, -1).replace(/''/g, "'");
}

/** Parse `a.b` / `"A"."b"` / `b` the way the server's regclass input does. */
export function parseNameList(text: string): string[] | null {
  const toks = lex(text).filter((t) => t.type !== 'space');
  const parts: string[] = [];
  for (let i = 0; i < toks.length; i++) {
    if (i % 2 === 0) {
      if (!isIdent(toks[i])) return null;
      parts.push(identName(toks[i]));
    } else if (toks[i].text !== '.') return null;
  }
  return toks.length % 2 === 1 ? parts : null;
}

/**
 * Does `word` occur in `text` as a name, quoted or (when `unquoted`, and it
 * folds to itself) unquoted? For reporting opaque function bodies.
 */
export function mentionsName(text: string, word: string, unquoted = true): boolean {
  const esc = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const quoted = new RegExp(`"${esc.replace(/"/g, '""')}"`);
  if (quoted.test(text)) return true;
  if (!unquoted || word !== word.toLowerCase()) return false;
  return new RegExp(`(^|[^A-Za-z0-9_$"])${esc}($|[^A-Za-z0-9_$"])`, 'i').test(text);
}
