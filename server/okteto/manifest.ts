import { dirname, resolve } from 'node:path';
import { CST, isMap, isScalar, isSeq, Lexer, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import { fail, ok, type DeployKind, type Result } from '../common/index.ts';
import { readDevSections, type DevSection } from './dev-section.ts';
import { describe, keyOf, ManifestProblem } from './yaml-nodes.ts';
import { validateRelativePath } from './plan.ts';

/**
 * The parts of an Okteto manifest (`okteto.yml`) that deploys use. `deploy` / `destroy` are a
 * list of commands (a string, or `{name, command}`) or an object `{remote, image, context,
 * commands}`. Other top-level Okteto keys are accepted and left to their owners.
 */
export type ManifestCommand = { name: string; command: string };

export type ManifestSection = {
  commands: ManifestCommand[];
  remote?: boolean;
  image?: string;
  context?: string;
};

export type Manifest = { name?: string; deploy?: ManifestSection; destroy?: ManifestSection; dev?: Record<string, DevSection> };

export type ManifestError = { code: 'manifest_syntax' | 'manifest_invalid' | 'manifest_too_large'; message: string };

export type ParsedManifest = { manifest: Manifest; warnings: string[] };

export const MANIFEST_NAMES = ['okteto.yml', 'okteto.yaml'] as const;

const TOP_LEVEL_KEYS = new Set(['name', 'namespace', 'context', 'icon', 'build', 'deploy', 'destroy', 'dependencies', 'dev', 'external', 'test', 'forward']);
const SECTION_KEYS = new Set(['remote', 'image', 'context', 'commands']);
const COMMAND_KEYS = new Set(['name', 'command']);


/**
 * Bounds of a manifest, checked before it is composed: the YAML library's composition is
 * superlinear on hostile input (its duplicate-key check is quadratic: 60k keys froze the server
 * for 27 s), and it runs on the main thread. Real manifests are a few KiB, a few hundred nodes.
 */
export type ManifestLimits = { maxBytes: number; maxNodes: number; maxDepth: number };

export const DEFAULT_MANIFEST_LIMITS: ManifestLimits = { maxBytes: 256 * 1024, maxNodes: 20_000, maxDepth: 64 };

const NODE_TOKENS = new Set(['scalar', 'single-quoted-scalar', 'double-quoted-scalar', 'block-scalar-header', 'flow-map-start', 'flow-seq-start', 'seq-item-ind', 'explicit-key-ind']);

/**
 * One pass of the YAML lexer (linear, and it stops at the first limit passed): counts nodes and
 * measures nesting, by flow brackets and by block indentation (plus `- ` items on one line).
 */
function checkLimits(text: string, fileName: string, limits: ManifestLimits): string | undefined {
  const bytes = Buffer.byteLength(text);
  if (bytes > limits.maxBytes) return `${fileName} is larger than ${Math.floor(limits.maxBytes / 1024)} KiB (${Math.ceil(bytes / 1024)} KiB)`;
  let nodes = 0;
  let flowDepth = 0;
  /** Indentations of the open block collections, innermost last. */
  const indents: number[] = [];
  let lineStart = true;
  let indent = 0;
  /** `- ` and `? ` indicators so far on this line: `- - - x` nests without indenting. */
  let onLine = 0;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (type === 'newline') {
      lineStart = true;
      indent = 0;
      onLine = 0;
      continue;
    }
    if (type === 'space') {
      if (lineStart) indent = token.length;
      continue;
    }
    if (type === 'comment' || type === 'doc-mode' || type === 'byte-order-mark') continue;
    if (lineStart && flowDepth === 0) {
      while (indents.length > 0 && (indents.at(-1) as number) >= indent) indents.pop();
      indents.push(indent);
    }
    lineStart = false;
    if (type === 'flow-map-start' || type === 'flow-seq-start') flowDepth++;
    else if (type === 'flow-map-end' || type === 'flow-seq-end') flowDepth = Math.max(0, flowDepth - 1);
    if (type === 'seq-item-ind' || type === 'explicit-key-ind') onLine++;
    if (type && NODE_TOKENS.has(type) && ++nodes > limits.maxNodes) return `${fileName} has more than ${limits.maxNodes} keys and values (nodes)`;
    if (indents.length + onLine + flowDepth > limits.maxDepth) return `${fileName} is nested deeper than ${limits.maxDepth} levels`;
  }
  return undefined;
}


export function parseManifest(text: string, fileName: string, limits: ManifestLimits = DEFAULT_MANIFEST_LIMITS): Result<ParsedManifest, ManifestError> {
  const tooBig = checkLimits(text, fileName, limits);
  if (tooBig) return fail({ code: 'manifest_too_large', message: tooBig });
  const lines = new LineCounter();
  // The library's duplicate-key check is quadratic in the keys of a mapping; the keys wharf reads
  // are checked below, in linear time.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const where = (node: Node | Pair | null | undefined): string => {
    const range = node && 'range' in node ? node.range : node && 'key' in node ? (node.key as Node | null)?.range : undefined;
    if (!range) return fileName;
    const pos = lines.linePos(range[0]);
    return `${fileName}:${pos.line}:${pos.col}`;
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = lines.linePos(e.pos[0]);
    const message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    return fail({ code: 'manifest_syntax', message: `${fileName}:${pos.line}:${pos.col}: ${message}` });
  }
  const warnings: string[] = [];
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) {
    return fail({ code: 'manifest_invalid', message: `${fileName}: the manifest is empty` });
  }
  try {
    if (!isMap(root)) throw new ManifestProblem(`${where(root)}: the manifest must be a mapping of keys (deploy, destroy, dev...), got ${describe(root)}`);
    const manifest: Manifest = {};
    const seen = new Set<string>();
    for (const pair of root.items) {
      const key = keyOf(pair, where, seen);
      if (!TOP_LEVEL_KEYS.has(key)) {
        warnings.push(`${where(pair.key as Node)}: unknown key "${key}" is ignored`);
        continue;
      }
      if (key === 'name') {
        if (!isScalar(pair.value) || typeof pair.value.value !== 'string') throw new ManifestProblem(`${where(pair.value as Node)}: name must be text, got ${describe(pair.value)}`);
        manifest.name = pair.value.value;
      }
      if (key === 'deploy' || key === 'destroy') manifest[key] = readSection(key, pair.value as Node | null, where, warnings, pair);
      if (key === 'dev') manifest.dev = readDevSections(pair.value as Node | null, { where, warnings, manifestDir: dirname(resolve(fileName)) });
    }
    return ok({ manifest, warnings });
  } catch (err) {
    if (err instanceof ManifestProblem) return fail({ code: 'manifest_invalid', message: err.message });
    throw err;
  }
}


function readSection(kind: DeployKind, node: Node | null, where: (n: Node | Pair | null | undefined) => string, warnings: string[], pair: Pair): ManifestSection {
  if (node === null || (isScalar(node) && node.value === null)) {
    throw new ManifestProblem(`${where(pair)}: ${kind} has no commands`);
  }
  if (isSeq(node)) return { commands: readCommands(kind, node as Node, where, warnings) };
  if (!isMap(node)) {
    throw new ManifestProblem(`${where(node)}: ${kind} must be a list of commands or a mapping with "commands" (and optionally remote, image, context), got ${describe(node)}`);
  }
  const section: ManifestSection = { commands: [] };
  let commandsNode: Node | undefined;
  const seen = new Set<string>();
  for (const item of (node as YAMLMap).items) {
    const key = keyOf(item, where, seen);
    const value = item.value as Node | null;
    if (!SECTION_KEYS.has(key)) {
      warnings.push(`${where(item.key as Node)}: unknown key "${kind}.${key}" is ignored`);
      continue;
    }
    if (key === 'remote') {
      if (!isScalar(value) || typeof value.value !== 'boolean') throw new ManifestProblem(`${where(value ?? item)}: ${kind}.remote must be true or false, got ${describe(value)}`);
      section.remote = value.value;
    } else if (key === 'image' || key === 'context') {
      if (!isScalar(value) || typeof value.value !== 'string' || !value.value.trim()) {
        throw new ManifestProblem(`${where(value ?? item)}: ${kind}.${key} must be non-empty text, got ${describe(value)}`);
      }
      section[key] = value.value.trim();
      if (key === 'context') {
        // A cloned repository is not trusted: its context may not name a folder outside the
        // manifest's folder (the packer and the agent also refuse one a symlink leads outside).
        const checked = validateRelativePath(section.context as string, `${kind}.context`);
        if (!checked.ok) throw new ManifestProblem(`${where(value)}: ${checked.error.replace('inside the workspace', "inside the manifest's folder")}`);
      }
    } else {
      commandsNode = value ?? undefined;
      if (!value || (isScalar(value) && value.value === null)) throw new ManifestProblem(`${where(item)}: ${kind}.commands has no commands`);
      if (!isSeq(value)) throw new ManifestProblem(`${where(value)}: ${kind}.commands must be a list of commands, got ${describe(value)}`);
      section.commands = readCommands(kind, value, where, warnings);
    }
  }
  if (!commandsNode) throw new ManifestProblem(`${where(pair)}: ${kind} has no commands (add a "commands" list)`);
  return section;
}

function readCommands(kind: DeployKind, seq: Node, where: (n: Node | Pair | null | undefined) => string, warnings: string[]): ManifestCommand[] {
  const items = isSeq(seq) ? seq.items : [];
  if (items.length === 0) throw new ManifestProblem(`${where(seq)}: ${kind} has no commands (the list is empty)`);
  return items.map((raw, i) => {
    const item = raw as Node | null;
    const label = `${kind} command ${i + 1}`;
    if (isScalar(item) && typeof item.value === 'string') {
      if (!item.value.trim()) throw new ManifestProblem(`${where(item)}: ${label} is empty`);
      return { name: item.value, command: item.value };
    }
    if (isMap(item)) {
      let name: string | undefined;
      let command: string | undefined;
      const seen = new Set<string>();
      for (const pair of item.items) {
        const key = keyOf(pair, where, seen);
        const value = pair.value as Node | null;
        if (!COMMAND_KEYS.has(key)) {
          warnings.push(`${where(pair.key as Node)}: unknown key "${key}" in ${label} is ignored`);
          continue;
        }
        if (!isScalar(value) || typeof value.value !== 'string') throw new ManifestProblem(`${where(value ?? pair)}: ${label}: ${key} must be text, got ${describe(value)}`);
        if (key === 'name') name = value.value;
        else command = value.value;
      }
      if (command === undefined || !command.trim()) throw new ManifestProblem(`${where(item)}: ${label} needs a non-empty "command"`);
      return { name: name?.trim() || command, command };
    }
    throw new ManifestProblem(`${where(item)}: ${label} must be a command: text, or a mapping {name, command}; got ${describe(item)}`);
  });
}
