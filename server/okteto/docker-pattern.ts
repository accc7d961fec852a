/**
 * One .dockerignore pattern, matched in time linear in (pattern length × path length).
 *
 * Written by hand on purpose: Docker's own matcher (moby/patternmatcher) compiles a pattern to a
 * Go regexp, which is linear-time (RE2). Every JavaScript port we found (@balena/dockerignore,
 * and the glob libraries picomatch, micromatch and minimatch) compiles to a JavaScript RegExp,
 * which backtracks: twelve `*` against a 40-character name took 25 s and froze the agent. No
 * well-kept linear-time matcher with Docker's semantics exists on npm, so this one simulates the
 * pattern as a set of positions (a Thompson NFA) instead of backtracking.
 *
 * Semantics (moby/patternmatcher's regexp translation):
 * - `*` is any run of characters but `/`; `?` is one character but `/`;
 * - `[...]` is a character class (ranges `a-z`, negation with a leading `^` or `!`, `\` escapes);
 * - `**` followed by more text is "nothing, or anything ending with a `/`" (`**\/` is the same);
 *   `**` at the end is anything; `**` then only literal text (`**.log`) is a suffix match;
 * - `\x` is the character x; every other character is itself.
 */
export type CompiledPattern = {
  /** Whether the whole path matches. */
  matches(path: string): boolean;
  /** The number of `/`-separated segments of the pattern (for Docker's parent-folder rule). */
  readonly segments: number;
};

type ClassItem = { from: string; to: string };
type Element =
  | { kind: 'char'; char: string }
  | { kind: 'one' }
  | { kind: 'class'; items: ClassItem[]; negated: boolean }
  | { kind: 'star' }
  /** `(.*\/)?`: skippable; once entered, any characters up to and including a `/`. */
  | { kind: 'dirs' }
  | { kind: 'rest' };

export class PatternSyntaxError extends Error {}

function parseClass(pattern: string, start: number): { element: Element; end: number } {
  let i = start + 1;
  let negated = false;
  if (pattern[i] === '^' || pattern[i] === '!') {
    negated = true;
    i++;
  }
  const items: ClassItem[] = [];
  let first = true;
  const readChar = (): string => {
    if (pattern[i] === '\\') {
      if (i + 1 >= pattern.length) throw new PatternSyntaxError('missing closing ]');
      i += 2;
      return pattern[i - 1];
    }
    return pattern[i++];
  };
  while (true) {
    if (i >= pattern.length) throw new PatternSyntaxError('missing closing ]');
    // As in Go's regexp, a `]` right after the opening (or after the negation) is literal.
    if (pattern[i] === ']' && !first) return { element: { kind: 'class', items, negated }, end: i + 1 };
    first = false;
    const from = readChar();
    if (pattern[i] === '-' && i + 1 < pattern.length && pattern[i + 1] !== ']') {
      i++;
      const to = readChar();
      if (to < from) throw new PatternSyntaxError(`invalid character class range ${from}-${to}`);
      items.push({ from, to });
    } else items.push({ from, to: from });
  }
}

function parseElements(pattern: string): Element[] {
  const elements: Element[] = [];
  for (let i = 0; i < pattern.length; ) {
    const ch = pattern[i];
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i += 2;
        if (pattern[i] === '/') i++;
        elements.push(i >= pattern.length ? { kind: 'rest' } : { kind: 'dirs' });
      } else {
        i++;
        // Consecutive stars mean the same as one (and would only multiply the states).
        if (elements.at(-1)?.kind !== 'star') elements.push({ kind: 'star' });
      }
    } else if (ch === '?') {
      elements.push({ kind: 'one' });
      i++;
    } else if (ch === '[') {
      const parsed = parseClass(pattern, i);
      elements.push(parsed.element);
      i = parsed.end;
    } else if (ch === '\\') {
      if (i + 1 >= pattern.length) throw new PatternSyntaxError('trailing backslash');
      elements.push({ kind: 'char', char: pattern[i + 1] });
      i += 2;
    } else {
      elements.push({ kind: 'char', char: ch });
      i++;
    }
  }
  return elements;
}

function inClass(element: Extract<Element, { kind: 'class' }>, ch: string): boolean {
  const hit = element.items.some((item) => ch >= item.from && ch <= item.to);
  return hit !== element.negated;
}

/** Throws PatternSyntaxError for a pattern Docker would refuse (an unclosed class, say). */
export function compileDockerPattern(pattern: string): CompiledPattern {
  const segments = pattern.split('/').length;
  // moby's fast path: `**` then literal text only is "the path ends with that text".
  if (pattern.startsWith('**') && pattern.length > 2 && pattern[2] !== '/' && !/[*?[\]\\]/.test(pattern.slice(2))) {
    const suffix = pattern.slice(2);
    return { segments, matches: (path) => path.endsWith(suffix) };
  }
  const elements = parseElements(pattern);
  const n = elements.length;
  // State k < n: about to match element k; state n: done. `inside[k]` for a `dirs` element
  // that has started consuming (it must end on a `/`).
  let at = new Uint8Array(n + 1);
  let inside = new Uint8Array(n + 1);
  let nextAt = new Uint8Array(n + 1);
  let nextInside = new Uint8Array(n + 1);

  /** Follows the moves that consume nothing: skipping a `*`, `**` or `**\/`. */
  function close(set: Uint8Array, insideSet: Uint8Array): void {
    for (let k = 0; k < n; k++) {
      if (!set[k]) continue;
      const kind = elements[k].kind;
      if (kind === 'star' || kind === 'rest' || kind === 'dirs') set[k + 1] = 1;
      if (kind === 'dirs') insideSet[k] = 1;
    }
  }

  return {
    segments,
    matches(path) {
      at.fill(0);
      inside.fill(0);
      at[0] = 1;
      close(at, inside);
      for (const ch of path) {
        nextAt.fill(0);
        nextInside.fill(0);
        let any = false;
        for (let k = 0; k < n; k++) {
          const element = elements[k];
          if (inside[k]) {
            // Inside `(.*\/)?`: any character continues it, a `/` may also end it.
            nextInside[k] = 1;
            if (ch === '/') nextAt[k + 1] = 1;
            any = true;
          }
          if (!at[k]) continue;
          // Where this element goes on `ch`: the next element, itself (a loop), or nowhere.
          let to = -1;
          if (element.kind === 'char') to = ch === element.char ? k + 1 : -1;
          else if (element.kind === 'one') to = ch !== '/' ? k + 1 : -1;
          else if (element.kind === 'class') to = inClass(element, ch) ? k + 1 : -1;
          else if (element.kind === 'star') to = ch !== '/' ? k : -1;
          else if (element.kind === 'rest') to = k;
          if (to >= 0) {
            nextAt[to] = 1;
            any = true;
          }
        }
        if (!any) return false;
        close(nextAt, nextInside);
        [at, nextAt] = [nextAt, at];
        [inside, nextInside] = [nextInside, inside];
      }
      return at[n] === 1;
    },
  };
}
