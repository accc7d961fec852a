import { isMap, isScalar, isSeq, type Node, type Pair } from 'yaml';

/** Small helpers for reading a composed YAML manifest, shared by its section readers. */

/** The first mistake found; parseManifest turns it into a `manifest_invalid` failure. */
export class ManifestProblem extends Error {}

/** A node in words, for "got …" in messages. */
export function describe(node: unknown): string {
  if (node === null || node === undefined) return 'nothing';
  if (isSeq(node)) return 'a list';
  if (isMap(node)) return 'a mapping';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'nothing (null)';
    if (typeof v === 'string') return `the text "${v.length > 40 ? `${v.slice(0, 37)}...` : v}"`;
    if (typeof v === 'number') return `the number ${v}`;
    if (typeof v === 'boolean') return `${v}`;
  }
  return 'something else';
}

/** A mapping key as text, refusing non-text and repeated keys (the parser's own check is off: it is quadratic). */
export function keyOf(pair: Pair, where: (n: Node | Pair | null | undefined) => string, seen: Set<string>): string {
  if (!isScalar(pair.key) || typeof pair.key.value !== 'string') {
    throw new ManifestProblem(`${where(pair.key as Node)}: keys must be text, got ${describe(pair.key)}`);
  }
  if (seen.has(pair.key.value)) throw new ManifestProblem(`${where(pair.key as Node)}: Map keys must be unique ("${pair.key.value}" appears twice)`);
  seen.add(pair.key.value);
  return pair.key.value;
}
