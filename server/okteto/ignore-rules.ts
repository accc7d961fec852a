import { posix } from 'node:path';
import { fail, ok, type DeployKind, type Result } from '../common/index.ts';
import { compileDockerPattern, PatternSyntaxError, type CompiledPattern } from './docker-pattern.ts';

/**
 * `.oktetoignore`: .dockerignore patterns (Docker's own matcher semantics, not .gitignore's),
 * split in sections. Lines before any `[section]` apply to every run, `[deploy]` lines only to
 * deploys and `[destroy]` lines only to destroys.
 */
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

const KNOWN_SECTIONS = new Set(['deploy', 'destroy', 'test']);
const SECTION_LINE = /^\[([A-Za-z0-9_-]+)\]$/;

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
    compileDockerPattern(pattern.startsWith('!') ? pattern.slice(1) : pattern);
    return undefined;
  } catch (err) {
    if (err instanceof PatternSyntaxError) return `invalid syntax: ${err.message}`;
    throw err;
  }
}

/** A pattern or one segment of one (`*` and `?` never cross a slash); a broken one matches nothing. */
function compilePattern(segment: string): CompiledPattern {
  try {
    return compileDockerPattern(segment);
  } catch {
    return { segments: 1, matches: () => false };
  }
}

/**
 * A pattern's segments when each one matches exactly one path segment (only `*`, `?` and literal
 * text), else undefined: `**`, character classes and escapes are left to the full matcher.
 */
function plainSegments(pattern: string): CompiledPattern[] | undefined {
  const body = normalisePattern(pattern.startsWith('!') ? pattern.slice(1) : pattern);
  if (body === undefined || /\*\*|[[\]\\]/.test(body)) return undefined;
  return body.split('/').map(compilePattern);
}

type Rule = { pattern: CompiledPattern; exclusion: boolean };

/**
 * moby/patternmatcher's MatchesOrParentMatches: every pattern is tried in order and the last one
 * that matches decides (`!` patterns re-include). A pattern matches a path as a whole, or the
 * first as many segments of its parent folder as the pattern has (so `build` excludes
 * `build/x/y`).
 */
function excludedBy(rules: readonly Rule[], path: string): boolean {
  const parentSegments = path.split('/').slice(0, -1);
  let excluded = false;
  for (const rule of rules) {
    let match = rule.pattern.matches(path);
    if (!match && parentSegments.length > 0 && rule.pattern.segments <= parentSegments.length) {
      match = rule.pattern.matches(parentSegments.slice(0, rule.pattern.segments).join('/'));
    }
    if (match) excluded = !rule.exclusion;
  }
  return excluded;
}

export function createIgnoreMatcher(patterns: readonly string[]): IgnoreMatcher {
  // A pattern that does not compile was refused by parseIgnoreFile; here it matches nothing.
  const rules: Rule[] = patterns.map((p) => {
    const exclusion = p.startsWith('!');
    return { pattern: compilePattern(exclusion ? p.slice(1) : p), exclusion };
  });
  const exceptions = patterns.filter((p) => p.startsWith('!')).map((p) => p.slice(1).split('/'));
  // Docker's matcher tries a pattern of n segments on the whole path and on its first n
  // segments. So a plain pattern no longer than a folder's depth gives everything inside the
  // answer it gives the folder, and a longer one matters inside only if its first segments match
  // the folder's.
  const segmented = patterns.map(plainSegments);
  const plain = segmented.filter((segments): segments is CompiledPattern[] => segments !== undefined);
  const complex = plain.length < segmented.length;
  return {
    patterns,
    excludes: (path) => patterns.length > 0 && excludedBy(rules, path),
    mayReinclude(dir) {
      const dirSegments = dir.split('/');
      return exceptions.some((segments) => {
        for (let i = 0; i < dirSegments.length; i++) {
          // A pattern that ends at or above this folder matches it (or a parent) as a whole.
          if (i >= segments.length) return true;
          if (segments[i].includes('**')) return true;
          if (!compilePattern(segments[i]).matches(dirSegments[i])) return false;
        }
        return true;
      });
    },
    decidesBelow(dir) {
      if (complex) return false;
      const dirSegments = dir.split('/');
      return plain.every((segments) => {
        if (segments.length <= dirSegments.length) return true;
        for (let i = 0; i < dirSegments.length; i++) if (!segments[i].matches(dirSegments[i])) return true;
        return false;
      });
    },
  };
}
