import dockerIgnoreModule from '@balena/dockerignore';
import { posix } from 'node:path';
import { fail, ok, type Result } from '../common/index.ts';

/**
 * `.oktetoignore`: .dockerignore patterns (Docker's own matcher semantics, not .gitignore's),
 * split in sections. Lines before any `[section]` apply to every run, `[deploy]` lines only to
 * deploys and `[destroy]` lines only to destroys.
 */
export type DeployKind = 'deploy' | 'destroy';

export type IgnoreFile = {
  /** Patterns per section, in file order; `all` holds the lines before any section header. */
  sections: { all: string[]; deploy: string[]; destroy: string[] };
  warnings: string[];
};

export type IgnoreMatcher = {
  /** Whether a path (relative, POSIX, no trailing slash) is left out of the context. */
  excludes(path: string): boolean;
  /**
   * Whether an excluded folder may still hold something a `!` rule brings back; when false the
   * packer skips the folder without reading it.
   */
  mayReinclude(dir: string): boolean;
  /**
   * Whether every path inside a folder gets the same answer as the folder itself (no pattern can
   * tell them apart), so the packer keeps a kept folder's contents without asking path by path.
   * False whenever that is not certain.
   */
  decidesBelow(dir: string): boolean;
  readonly patterns: readonly string[];
};

export type IgnoreError = { code: 'bad_pattern'; message: string };

// The package is CommonJS with `module.exports.default = factory`; its types only describe `default`.
const createDockerIgnore = dockerIgnoreModule.default;

const KNOWN_SECTIONS = new Set(['deploy', 'destroy', 'test']);
const SECTION_LINE = /^\[([A-Za-z0-9_-]+)\]$/;
const GLOB_CHARS = /[*?[\]\\]/;

export function parseIgnoreFile(text: string, fileName = '.oktetoignore'): Result<IgnoreFile, IgnoreError> {
  const sections: IgnoreFile['sections'] = { all: [], deploy: [], destroy: [] };
  const warnings: string[] = [];
  let current: string[] | undefined = sections.all;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    // As in moby's dockerignore reader: a comment is a line that starts with '#', nothing else.
    if (raw.startsWith('#')) continue;
    const line = raw.trim();
    if (!line) continue;
    const section = SECTION_LINE.exec(line);
    if (section) {
      const name = section[1];
      if (name === 'deploy' || name === 'destroy') current = sections[name];
      else {
        current = undefined;
        if (!KNOWN_SECTIONS.has(name)) warnings.push(`${fileName}:${i + 1}: unknown section [${name}]; its lines are not used`);
      }
      continue;
    }
    if (!current) continue;
    const pattern = normalisePattern(line);
    if (pattern === undefined) continue;
    const problem = checkPattern(pattern);
    if (problem) return fail({ code: 'bad_pattern', message: `${fileName}:${i + 1}: bad pattern "${line}": ${problem}` });
    current.push(pattern);
  }
  return ok({ sections, warnings });
}

/** The patterns that apply to one kind of run, in the order they must be evaluated. */
export function patternsFor(file: IgnoreFile, kind: DeployKind): string[] {
  return [...file.sections.all, ...file.sections[kind]];
}

/** moby's dockerignore.ReadAll normalisation: trim, clean, drop a leading slash, keep the `!`. */
function normalisePattern(line: string): string | undefined {
  let pattern = line;
  const invert = pattern.startsWith('!');
  if (invert) pattern = pattern.slice(1).trim();
  if (pattern.length > 0) {
    pattern = posix.normalize(pattern);
    if (pattern.length > 1 && pattern.endsWith('/')) pattern = pattern.slice(0, -1);
    if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
  }
  if (invert) {
    // A lone "!" is an error in Docker; it can never match anything, so it is dropped with the rest.
    if (!pattern) return undefined;
    return `!${pattern}`;
  }
  return pattern || undefined;
}

function checkPattern(pattern: string): string | undefined {
  try {
    createDockerIgnore({ ignorecase: false }).add(adaptForBalena(pattern)).ignores('probe');
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^Invalid regular expression: /, 'invalid syntax: ');
  }
}

/**
 * Two small corrections so @balena/dockerignore answers like Docker's patternmatcher:
 * - A pattern starting with `**` followed by literal text (`**.log`) is a suffix match in Docker
 *   (`x/y.log` and `y.log` match); balena reads it as `(.*\/)?\.log`. `**\/*<text>` is the same
 *   suffix match in balena's terms.
 * - Docker escapes the regexp characters `+ ( ) | { }` (they are literal in a pattern); balena
 *   only escapes `.` and `$`, so `a+b` would be a regexp there.
 */
export function adaptForBalena(pattern: string): string {
  const invert = pattern.startsWith('!');
  let body = invert ? pattern.slice(1) : pattern;
  if (body.startsWith('**') && body.length > 2 && body[2] !== '/' && !GLOB_CHARS.test(body.slice(2))) {
    body = `**/*${body.slice(2)}`;
  }
  let escaped = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch === '\\') {
      escaped += ch + (body[i + 1] ?? '');
      i++;
    } else if ('+()|{}'.includes(ch)) escaped += `\\${ch}`;
    else escaped += ch;
  }
  return invert ? `!${escaped}` : escaped;
}

/** One path segment of a pattern as a regexp (`*` and `?` never cross a slash). */
function segmentRegExp(segment: string): RegExp {
  let out = '^';
  for (let i = 0; i < segment.length; i++) {
    const ch = segment[i];
    if (ch === '*') out += '[^/]*';
    else if (ch === '?') out += '[^/]';
    else if (ch === '\\' && i + 1 < segment.length) out += `\\${segment[++i]}`;
    else if (ch === '[' || ch === ']') out += ch;
    else out += ch.replace(/[.+()|{}$^]/g, '\\$&');
  }
  try {
    return new RegExp(`${out}$`);
  } catch {
    return /^/;
  }
}

/**
 * A pattern's segments when each one matches exactly one path segment (only `*`, `?` and literal
 * text), else undefined: `**`, character classes and escapes are left to the full matcher.
 */
function plainSegments(pattern: string): RegExp[] | undefined {
  const body = normalisePattern(pattern.startsWith('!') ? pattern.slice(1) : pattern);
  if (body === undefined || /\*\*|[[\]\\]/.test(body)) return undefined;
  return body.split('/').map(segmentRegExp);
}

export function createIgnoreMatcher(patterns: readonly string[]): IgnoreMatcher {
  const matcher = createDockerIgnore({ ignorecase: false }).add(patterns.map(adaptForBalena));
  const exceptions = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1).split('/'));
  // Docker's matcher tries a pattern of n segments on the whole path and on its first n
  // segments. So a plain pattern no longer than a folder's depth gives everything inside the
  // answer it gives the folder, and a longer one matters inside only if its first segments match
  // the folder's.
  const segmented = patterns.map(plainSegments);
  const plain = segmented.filter((segments): segments is RegExp[] => segments !== undefined);
  const complex = plain.length < segmented.length;
  return {
    patterns,
    excludes: (path) => patterns.length > 0 && matcher.ignores(path),
    mayReinclude(dir) {
      const dirSegments = dir.split('/');
      return exceptions.some((segments) => {
        for (let i = 0; i < dirSegments.length; i++) {
          // A pattern that ends at or above this folder matches it (or a parent) as a whole.
          if (i >= segments.length) return true;
          if (segments[i].includes('**')) return true;
          if (!segmentRegExp(segments[i]).test(dirSegments[i])) return false;
        }
        return true;
      });
    },
    decidesBelow(dir) {
      if (complex) return false;
      const dirSegments = dir.split('/');
      return plain.every((segments) => {
        if (segments.length <= dirSegments.length) return true;
        for (let i = 0; i < dirSegments.length; i++) if (!segments[i].test(dirSegments[i])) return true;
        return false;
      });
    },
  };
}
