import { isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, isSeq, type Node, type Pair, type YAMLMap } from 'yaml';
import { parseForwardRule, parseReverseRule, type HybridRules } from '../hybrid/index.ts';
import { describe, keyOf, ManifestProblem } from './yaml-nodes.ts';

/**
 * `dev.<name>` of an Okteto manifest, as `wharf up` runs it: hybrid mode runs `command` on the
 * developer's machine, in `workdir`, with the service's environment, and bridges its ports with
 * `forward` / `reverse` rules. Keys of Okteto's other dev modes (sync, volumes, resources...)
 * are accepted and ignored with a warning, so one manifest serves both tools.
 */
export type DevSection = {
  name: string;
  /** Where the section starts (`okteto.yml:12:3`), for later messages. */
  where: string;
  /** `hybrid` or `sync` (Okteto's default when none is given). */
  mode: 'hybrid' | 'sync';
  /** The local command as argv: a list as given, text through `sh -c`; empty when none. */
  command: string[];
  /** Absolute: the manifest's folder, or `workdir` relative to it. */
  workdir: string;
  rules: HybridRules;
  environment: Record<string, string>;
  /** Where forward rules listen and reverse rules dial on the developer's machine. */
  interface: string;
  /**
   * `selector`: labels that find the service's original workload (a Kubernetes Deployment or
   * StatefulSet) when it is not named like the dev entry; drivers without workloads ignore it.
   */
  selector?: Record<string, string>;
  /** Keys accepted but of no use (`image`: the workspace is the service's environment), said once at start. */
  notices: string[];
};

type Where = (n: Node | Pair | null | undefined) => string;

const MODES = ['hybrid', 'sync'];
const DEV_KEYS = new Set(['mode', 'command', 'workdir', 'forward', 'reverse', 'environment', 'interface', 'selector', 'image']);
const NOTICE_KEYS = new Set(['image']);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INTERFACE = /^(?:localhost|(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d))$/;

function isNothing(node: Node | null | undefined): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null);
}

function textOf(node: Node | null, what: string, where: Where, fallback: Pair): string {
  if (!isScalar(node) || (typeof node.value !== 'string' && typeof node.value !== 'number')) {
    throw new ManifestProblem(`${where(node ?? fallback)}: ${what} must be text, got ${describe(node)}`);
  }
  return String(node.value);
}

export function readDevSections(node: Node | null, ctx: { where: Where; warnings: string[]; manifestDir: string }): Record<string, DevSection> {
  const { where } = ctx;
  if (isNothing(node)) return {};
  if (!isMap(node)) throw new ManifestProblem(`${where(node)}: dev must be a mapping of services (dev: {api: {mode: hybrid, ...}}), got ${describe(node)}`);
  const sections: Record<string, DevSection> = {};
  const seen = new Set<string>();
  for (const pair of (node as YAMLMap).items) {
    const name = keyOf(pair, where, seen);
    sections[name] = readDev(name, pair, ctx);
  }
  return sections;
}

function readDev(name: string, pair: Pair, ctx: { where: Where; warnings: string[]; manifestDir: string }): DevSection {
  const { where } = ctx;
  const field = (key: string) => `dev.${name}.${key}`;
  const value = pair.value as Node | null;
  if (!isMap(value)) throw new ManifestProblem(`${where(value ?? pair)}: dev.${name} must be a mapping (mode, command, forward, reverse...), got ${describe(value)}`);
  const dev: DevSection = {
    name,
    where: where(pair),
    mode: 'sync',
    command: [],
    workdir: ctx.manifestDir,
    rules: { forward: [], reverse: [] },
    environment: {},
    interface: '127.0.0.1',
    notices: [],
  };
  const seen = new Set<string>();
  const localPorts = new Map<number, number>();
  const remotePorts = new Map<number, number>();
  for (const item of (value as YAMLMap).items) {
    const key = keyOf(item, where, seen);
    const v = item.value as Node | null;
    if (!DEV_KEYS.has(key)) {
      ctx.warnings.push(`${where(item.key as Node)}: "${field(key)}" is not used by wharf up and is ignored`);
      continue;
    }
    if (NOTICE_KEYS.has(key)) {
      dev.notices.push(`${where(item.key as Node)}: ${field(key)} is ignored: the workspace is the service's environment`);
      continue;
    }
    switch (key) {
      case 'mode': {
        const mode = textOf(v, field('mode'), where, item);
        if (!MODES.includes(mode)) throw new ManifestProblem(`${where(v)}: ${field('mode')}: unknown mode "${mode}" (expected hybrid or sync)`);
        dev.mode = mode as DevSection['mode'];
        break;
      }
      case 'command':
        if (isSeq(v)) {
          dev.command = v.items.map((part, i) => textOf(part as Node | null, `${field('command')}[${i}]`, where, item));
          if (dev.command.length === 0) throw new ManifestProblem(`${where(v)}: ${field('command')} is an empty list`);
        } else {
          const text = textOf(v, field('command'), where, item);
          if (!text.trim()) throw new ManifestProblem(`${where(v)}: ${field('command')} is empty`);
          dev.command = ['/bin/sh', '-c', text];
        }
        break;
      case 'workdir': {
        const dir = textOf(v, field('workdir'), where, item);
        dev.workdir = isAbsolute(dir) ? dir : resolve(ctx.manifestDir, dir);
        break;
      }
      case 'interface': {
        const iface = textOf(v, field('interface'), where, item);
        if (!INTERFACE.test(iface)) throw new ManifestProblem(`${where(v)}: ${field('interface')} must be an IPv4 address such as 127.0.0.1 or 0.0.0.0, got "${iface}"`);
        dev.interface = iface;
        break;
      }
      case 'environment':
        dev.environment = readEnvironment(v, field('environment'), where, item);
        break;
      case 'selector': {
        if (isNothing(v)) break;
        if (!isMap(v)) throw new ManifestProblem(`${where(v ?? item)}: ${field('selector')} must be a map of labels, like {app: api}; got ${describe(v)}`);
        const selector: Record<string, string> = {};
        for (const pair of v.items) {
          const label = isScalar(pair.key) ? String(pair.key.value) : '';
          const text = isScalar(pair.value) ? String(pair.value.value ?? '') : undefined;
          if (!label || text === undefined || /[,=]/.test(label) || /[,=]/.test(text)) throw new ManifestProblem(`${where((pair.key as Node) ?? item)}: ${field('selector')}: labels are plain names and values, like app: api`);
          selector[label] = text;
        }
        dev.selector = selector;
        break;
      }
      case 'forward':
      case 'reverse': {
        if (isNothing(v)) break;
        if (!isSeq(v)) throw new ManifestProblem(`${where(v)}: ${field(key)} must be a list of rules, got ${describe(v)}`);
        v.items.forEach((raw, i) => {
          const entry = raw as Node | null;
          const label = `${field(key)}[${i}]`;
          const plain = isScalar(entry) ? entry.value : isMap(entry) ? entry.toJSON() : entry?.toJSON?.();
          if (key === 'forward') {
            const rule = parseForwardRule(plain);
            if (!rule.ok) throw new ManifestProblem(`${where(entry ?? item)}: ${label}: ${rule.error}`);
            const earlier = localPorts.get(rule.value.localPort);
            if (earlier !== undefined) throw new ManifestProblem(`${where(entry)}: ${label}: local port ${rule.value.localPort} is already used by ${field('forward')}[${earlier}]`);
            localPorts.set(rule.value.localPort, i);
            dev.rules.forward.push(rule.value);
          } else {
            const rule = parseReverseRule(typeof plain === 'number' ? String(plain) : plain);
            if (!rule.ok) throw new ManifestProblem(`${where(entry ?? item)}: ${label}: ${rule.error}`);
            const earlier = remotePorts.get(rule.value.remotePort);
            if (earlier !== undefined) throw new ManifestProblem(`${where(entry)}: ${label}: workspace port ${rule.value.remotePort} is already used by ${field('reverse')}[${earlier}]`);
            remotePorts.set(rule.value.remotePort, i);
            dev.rules.reverse.push(rule.value);
          }
        });
        break;
      }
    }
  }
  return dev;
}

/** A mapping `{NAME: value}` or a list of `NAME=value`, as Okteto takes both. */
function readEnvironment(node: Node | null, what: string, where: Where, fallback: Pair): Record<string, string> {
  const env: Record<string, string> = {};
  if (isNothing(node)) return env;
  const check = (key: string, at: Node | Pair | null) => {
    if (!ENV_NAME.test(key)) throw new ManifestProblem(`${where(at ?? fallback)}: ${what}: "${key}" is not a variable name (letters, digits and _, not starting with a digit)`);
  };
  if (isMap(node)) {
    for (const pair of (node as YAMLMap).items) {
      if (!isScalar(pair.key)) throw new ManifestProblem(`${where(pair)}: ${what}: names must be text`);
      const key = String(pair.key.value);
      check(key, pair.key as Node);
      const value = pair.value as Node | null;
      env[key] = isNothing(value) ? '' : isScalar(value) && ['string', 'number', 'boolean'].includes(typeof value.value) ? String(value.value) : (() => {
        throw new ManifestProblem(`${where(value)}: ${what}.${key} must be text, got ${describe(value)}`);
      })();
    }
    return env;
  }
  if (isSeq(node)) {
    node.items.forEach((raw, i) => {
      const item = raw as Node | null;
      const text = isScalar(item) && typeof item.value === 'string' ? item.value : undefined;
      const at = text?.indexOf('=') ?? -1;
      if (text === undefined || at <= 0) throw new ManifestProblem(`${where(item ?? fallback)}: ${what}[${i}] must be "NAME=value", got ${describe(item)}`);
      check(text.slice(0, at), item);
      env[text.slice(0, at)] = text.slice(at + 1);
    });
    return env;
  }
  throw new ManifestProblem(`${where(node)}: ${what} must be a mapping {NAME: value} or a list of "NAME=value", got ${describe(node)}`);
}
