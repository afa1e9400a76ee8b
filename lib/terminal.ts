// The markdown pgshift writes (status, evaluation report) rendered for a terminal: bold
// headings, tables with aligned columns (right-aligned where the markdown says `---:`), and
// colour for the states (ok green, warning yellow, failure red). Only the markdown pgshift
// itself writes is understood: headings, pipe tables, `- ` items, **bold**. Hand-written: a
// table renderer is a few lines, and the CLI starts faster for every package it does not load.
// Pure.

export interface TerminalOptions {
  /** ANSI styles and colours (off: NO_COLOR, or a terminal that has none). */
  color: boolean;
}

const SGR = { bold: '1', dim: '2', red: '31', green: '32', yellow: '33', cyan: '36' } as const;
type Style = keyof typeof SGR;

// eslint-disable-next-line no-control-regex -- ANSI escape sequences are what it removes
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** Columns a string takes in a terminal: emoji are two wide, variation selectors and combining marks none. */
export function displayWidth(s: string): number {
  let w = 0;
  const chars = [...s.replace(ANSI, '')];
  for (let i = 0; i < chars.length; i++) {
    const cp = chars[i].codePointAt(0)!;
    if (cp === 0xfe0f) continue; // counted with the character it follows
    if ((cp >= 0x300 && cp <= 0x36f) || cp === 0x200d) continue;
    const emoji = (cp >= 0x1f300 && cp <= 0x1faff) || cp === 0x2705 || cp === 0x274c || cp === 0x2b1c || cp === 0x23f3;
    w += emoji || chars[i + 1] === '\ufe0f' ? 2 : 1;
  }
  return w;
}

/** The state words and icons, and their colour. A count of 0 ("0 fail") is no failure. */
const STATES: [RegExp, Style][] = [
  [/✅|(?<![\w-])(?:COMPATIBLE|done|consistent|pass|ok|no difference|all consistent)(?![\w-])/g, 'green'],
  [/⚠️?|(?<![\w-]|\b0 )(?:warn|warning|paused|aborting|acknowledged)(?![\w-])/g, 'yellow'],
  [/❌|(?<![\w-]|\b0 )(?:INCOMPATIBLE|BAD-INPUT|failed|aborted|fail|inconsistent|DIFFERENCES FOUND|DIFF|differences)(?![\w-])/g, 'red'],
];

/** A line cut to `columns` (its styles dropped when it is cut), so a redraw in place knows how many rows it took. */
export function clipLine(line: string, columns: number): string {
  if (displayWidth(line) <= columns) return line;
  let out = '';
  for (const ch of line.replace(ANSI, '')) {
    if (displayWidth(out + ch) > columns - 1) break;
    out += ch;
  }
  return `${out}…`;
}

export function terminalRenderer(opts: TerminalOptions) {
  // Each style ends with its own reset (22: bold, 39: colour), so a coloured word keeps a heading bold.
  const style = (s: string, ...styles: Style[]) =>
    opts.color && s ? `\x1b[${styles.map((x) => SGR[x]).join(';')}m${s}\x1b[${styles.map((x) => (x === 'bold' || x === 'dim' ? '22' : '39')).join(';')}m` : s;
  const states = (s: string) => {
    if (!opts.color) return s;
    for (const [re, colour] of STATES) s = s.replace(re, (m) => style(m, colour));
    return s;
  };
  const inline = (s: string) => states(s.replace(/\*\*(.+?)\*\*/g, (_, b: string) => style(b, 'bold')));

  function table(rows: string[]): string[] {
    const split = (line: string) =>
      line
        .trim()
        .replace(/^\|/, '')
        .replace(/\|$/, '')
        .split(/(?<!\\)\|/)
        .map((c) => c.trim().replace(/\\\|/g, '|'));
    const cells = rows.map(split);
    const rule = cells.findIndex((r) => r.every((c) => /^:?-+:?$/.test(c)));
    const right = rule >= 0 ? cells[rule].map((c) => c.endsWith(':')) : [];
    const body = cells.filter((_, i) => i !== rule);
    const n = Math.max(...body.map((r) => r.length));
    const shown = body.map((r, i) => Array.from({ length: n }, (_, j) => (i === 0 && rule === 1 ? style(r[j] ?? '', 'bold') : inline(r[j] ?? ''))));
    const widths = Array.from({ length: n }, (_, j) => Math.max(...shown.map((r) => displayWidth(r[j]))));
    // Empty trailing columns (a "… more tables" row) do not widen anything; the last column is not padded.
    return shown.map((r) =>
      r
        .map((c, j) => {
          const pad = ' '.repeat(widths[j] - displayWidth(c));
          return right[j] ? pad + c : j === n - 1 ? c : c + pad;
        })
        .join('  ')
        .trimEnd(),
    );
  }

  /** The markdown as terminal lines. */
  return function render(markdown: string): string {
    const out: string[] = [];
    const lines = markdown.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (line.startsWith('|')) {
        const rows = [line];
        while (i + 1 < lines.length && lines[i + 1].startsWith('|')) rows.push(lines[++i]);
        out.push(...table(rows).map((r) => `  ${r}`));
      } else if (/^#{1,2} /.test(line)) out.push(style(states(line.replace(/^#+ /, '')), 'bold'));
      else if (/^#{3,} /.test(line)) out.push(style(inline(line.replace(/^#+ /, '')), 'bold', 'cyan'));
      else if (line.startsWith('- ')) out.push(`  • ${inline(line.slice(2))}`);
      else out.push(inline(line));
    }
    return out.join('\n');
  };
}
