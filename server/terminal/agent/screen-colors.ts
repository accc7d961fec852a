/**
 * The colours the screen reports when a program asks (OSC 4 / 10 / 11 / 12 with `?`), kept the
 * way xterm.js in the browser keeps them: its default palette and the web terminal's theme, and
 * whatever the program itself set since (OSC 4/10/11/12 with a colour) or restored (OSC 104/110/
 * 111/112). Headless xterm.js parses these sequences but, having no theme, answers none of them.
 */

import { TERMINAL_COLORS } from '../../common/index.ts';

/** The web terminal's theme, shared with it through server/common. */
export const SCREEN_COLORS = TERMINAL_COLORS;

/** What xterm.js's parser reports: a query (0), a change (1) or a restore (2) of one colour, or of all. */
export type ColorEvent = { type: 0 | 1 | 2; index?: number; color?: [number, number, number] };

type Rgb = [number, number, number];

/** Indexes past the 256-colour palette, as xterm.js numbers them. */
const FOREGROUND = 256;
const BACKGROUND = 257;
const CURSOR = 258;

const ANSI_16 = ['#2e3436', '#cc0000', '#4e9a06', '#c4a000', '#3465a4', '#75507b', '#06989a', '#d3d7cf', '#555753', '#ef2929', '#8ae234', '#fce94f', '#729fcf', '#ad7fa8', '#34e2e2', '#eeeeec'];
const CUBE_LEVELS = [0, 95, 135, 175, 215, 255];

function parseHex(hex: string): Rgb {
  return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
}

/** xterm.js's default palette (16 ANSI colours, the 6×6×6 cube, 24 greys), then the theme's three. */
function buildDefaultColors(): Rgb[] {
  const colors = ANSI_16.map(parseHex);
  for (let i = 0; i < 216; i++) colors.push([CUBE_LEVELS[Math.floor(i / 36) % 6], CUBE_LEVELS[Math.floor(i / 6) % 6], CUBE_LEVELS[i % 6]]);
  for (let i = 0; i < 24; i++) colors.push([8 + 10 * i, 8 + 10 * i, 8 + 10 * i]);
  colors.push(parseHex(SCREEN_COLORS.foreground), parseHex(SCREEN_COLORS.background), parseHex(SCREEN_COLORS.cursor));
  return colors;
}

/** A colour as xterm reports it: `rgb:rrrr/gggg/bbbb`, each 8-bit channel written twice. */
function formatColor([r, g, b]: Rgb): string {
  const channel = (v: number) => v.toString(16).padStart(2, '0').repeat(2);
  return `rgb:${channel(r)}/${channel(g)}/${channel(b)}`;
}

function nameColor(index: number): string {
  if (index === FOREGROUND) return '10';
  if (index === BACKGROUND) return '11';
  if (index === CURSOR) return '12';
  return `4;${index}`;
}

/** Keeps the colours; `handle` takes the parser's colour events and returns the answers to send. */
export function createColorReporter() {
  const defaults = buildDefaultColors();
  let colors = defaults.map((c): Rgb => [...c]);
  return {
    handle(events: readonly ColorEvent[]): string[] {
      const replies: string[] = [];
      for (const event of events) {
        const { index } = event;
        if (event.type === 2 && index === undefined) colors = defaults.map((c): Rgb => [...c]);
        if (index === undefined || index < 0 || index >= colors.length) continue;
        if (event.type === 0) replies.push(`\x1b]${nameColor(index)};${formatColor(colors[index])}\x1b\\`);
        else if (event.type === 1 && event.color) colors[index] = [...event.color];
        else if (event.type === 2) colors[index] = [...defaults[index]];
      }
      return replies;
    },
  };
}
