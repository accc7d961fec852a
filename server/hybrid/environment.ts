import { fail, ok, type ResolvedVariable, type Result } from '../common/index.ts';

export type { ResolvedEnvironment, ResolvedVariable, ServiceProcess } from '../common/index.ts';

/**
 * The environment `wharf up` gives a service's local command (docs/hybrid.md). It is made of
 * layers, highest first:
 *
 *   local        PATH, HOME, TERM, USER of the developer's machine
 *   manifest     `dev.<name>.environment` of okteto.yml
 *   dev-container what the service's process in the workspace really sees
 *   spec         the workspace's own variables (a container spec's `env`)
 *   config-set:N each config set (a configmap), later names over earlier ones
 *   secret-set:N each secret set (a secret), later names over earlier ones
 *   image        the base environment workspace processes start with (an image's `ENV`)
 *
 * Shared by the three programs: the server resolves the workspace's layers, the helper puts the
 * manifest and the developer's machine on top, and both print where each value came from.
 */

/** One layer: where its values come from (`spec`, `config-set:db`...) and the values. */
export type EnvLayer = {
  source: string;
  variables: Record<string, string>;
  /** A secret set: a name it defines is secret whichever layer wins (see ResolvedVariable.secret). */
  secret?: boolean;
};

/** The variables the developer's machine always gives, over every other layer. */
export const LOCAL_VARIABLES = ['PATH', 'HOME', 'TERM', 'USER'] as const;

/** The variable that marks a workspace process as serving `dev.<name>` (process driver). */
export const SERVICE_MARKER = 'WHARF_SERVICE';

export const SOURCES = {
  local: 'local',
  manifest: 'manifest',
  devContainer: 'dev-container',
  spec: 'spec',
  configSet: (name: string) => `config-set:${name}`,
  secretSet: (name: string) => `secret-set:${name}`,
  image: 'image',
} as const;

export type NamedSet = { name: string; variables: Record<string, string> };

/**
 * The winner of every name: the first layer (highest) that defines it. Sorted by name, so two
 * resolutions of the same layers print the same.
 */
export function resolveEnvironment(layers: EnvLayer[]): ResolvedVariable[] {
  const winners = new Map<string, ResolvedVariable>();
  const secret = new Set<string>();
  for (const layer of layers) {
    for (const [name, value] of Object.entries(layer.variables)) {
      if (layer.secret) secret.add(name);
      if (!winners.has(name)) winners.set(name, { name, value, source: layer.source, secret: false });
    }
  }
  return sortByName([...winners.values()].map((v) => ({ ...v, secret: secret.has(v.name) })));
}

function sortByName(variables: ResolvedVariable[]): ResolvedVariable[] {
  return variables.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The workspace's layers in their order. Sets apply in name order, a later name winning over an
 * earlier one (as with Kubernetes' `envFrom`, where a later source wins), so the highest-first
 * list holds them in reverse name order.
 */
export function workspaceLayers(input: {
  devContainer: Record<string, string>;
  spec: Record<string, string>;
  configSets: NamedSet[];
  secretSets: NamedSet[];
  image: Record<string, string>;
}): EnvLayer[] {
  const byNameDescending = (sets: NamedSet[]) => [...sets].sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  return [
    { source: SOURCES.devContainer, variables: input.devContainer },
    { source: SOURCES.spec, variables: input.spec },
    ...byNameDescending(input.configSets).map((s) => ({ source: SOURCES.configSet(s.name), variables: s.variables })),
    ...byNameDescending(input.secretSets).map((s) => ({ source: SOURCES.secretSet(s.name), variables: s.variables, secret: true })),
    { source: SOURCES.image, variables: input.image },
  ];
}

/**
 * The layers when the workspace's driver read the service's original workload (a Kubernetes
 * Deployment): the workspace's own variables and sets stay above the workload's (they are what a
 * developer set on purpose), the workload's `env` joins the spec layer (the names whose values
 * came from a Secret in a secret part of it, so they are masked), its `envFrom` configmaps and
 * secrets join the sets (a later one over an earlier one, as `envFrom` does), and the image
 * layer is the workload image's own environment when it could be read, else the agent's base.
 */
export function workloadLayers(input: {
  devContainer: Record<string, string>;
  workspace: { spec: Record<string, string>; configSets: NamedSet[]; secretSets: NamedSet[] };
  workload: { env: Record<string, string>; secretEnv: string[]; configSets: NamedSet[]; secretSets: NamedSet[]; image: Record<string, string> | undefined };
  agentImage: Record<string, string>;
}): EnvLayer[] {
  const secretNames = new Set(input.workload.secretEnv);
  const plain = Object.fromEntries(Object.entries(input.workload.env).filter(([name]) => !secretNames.has(name)));
  const fromSecrets = Object.fromEntries(Object.entries(input.workload.env).filter(([name]) => secretNames.has(name)));
  const own = workspaceLayers({ ...input.workspace, devContainer: input.devContainer, image: {} });
  const configStart = own.findIndex((l) => l.source.startsWith('config-set:') || l.source.startsWith('secret-set:') || l.source === SOURCES.image);
  const secretStart = own.findIndex((l) => l.source.startsWith('secret-set:') || l.source === SOURCES.image);
  const laterFirst = (sets: NamedSet[]) => [...sets].reverse();
  return [
    ...own.slice(0, configStart),
    { source: SOURCES.spec, variables: plain },
    { source: SOURCES.spec, variables: fromSecrets, secret: true },
    ...own.slice(configStart, secretStart),
    ...laterFirst(input.workload.configSets).map((s) => ({ source: SOURCES.configSet(s.name), variables: s.variables })),
    ...own.slice(secretStart, -1),
    ...laterFirst(input.workload.secretSets).map((s) => ({ source: SOURCES.secretSet(s.name), variables: s.variables, secret: true })),
    { source: SOURCES.image, variables: input.workload.image ?? input.agentImage },
  ];
}

/**
 * The helper's layers over the workspace's resolved variables: the developer's PATH, HOME, TERM
 * and USER, then the manifest's `environment`, then what the server resolved (each variable keeps
 * the source and secrecy it came with).
 */
export function developerLayers(input: { local: Record<string, string | undefined>; manifest: Record<string, string>; workspace: ResolvedVariable[] }): EnvLayer[] {
  const local: Record<string, string> = {};
  for (const name of LOCAL_VARIABLES) {
    const value = input.local[name];
    if (value !== undefined) local[name] = value;
  }
  return [
    { source: SOURCES.local, variables: local },
    { source: SOURCES.manifest, variables: input.manifest },
    ...input.workspace.filter((v) => v.value !== null).map((v) => ({ source: v.source, variables: { [v.name]: v.value as string }, secret: v.secret })),
  ];
}

/**
 * The helper's whole resolution: developerLayers() resolved. A name the workspace marked secret
 * stays secret when the manifest or the machine wins it, and a secret whose value the server
 * kept back is still listed (value null) at the layer it would have come from.
 */
export function resolveDeveloperEnvironment(input: Parameters<typeof developerLayers>[0]): ResolvedVariable[] {
  const merged = resolveEnvironment(developerLayers(input));
  const secret = new Set(input.workspace.filter((v) => v.secret).map((v) => v.name));
  const listed = new Set(merged.map((v) => v.name));
  const withheld = input.workspace.filter((v) => v.value === null && !listed.has(v.name));
  return sortByName([...merged.map((v) => ({ ...v, secret: v.secret || secret.has(v.name) })), ...withheld]);
}

/** The resolved variables as a process environment (a secret left out by the server is absent). */
export function toProcessEnv(variables: ResolvedVariable[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of variables) if (v.value !== null) env[v.name] = v.value;
  return env;
}

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Set names as Kubernetes names configmaps and secrets: a DNS label. */
const SET_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const ENV_LIMITS = { variables: 500, bytes: 256 * 1024, sets: 100 } as const;

export function checkVariableName(name: string): string | undefined {
  return VARIABLE_NAME.test(name) ? undefined : `"${name.slice(0, 64)}" is not a variable name: use letters, digits and "_", not starting with a digit`;
}

export function checkSetName(name: string): string | undefined {
  return SET_NAME.test(name) ? undefined : `"${name.slice(0, 64)}" is not a set name: 1-63 lower-case letters, digits and "-", starting and ending with a letter or digit`;
}

/**
 * Untrusted `{NAME: "value"}` input. With `allowNull`, a null value means "remove this name" (a
 * merge patch, RFC 7396). NUL cannot be part of a process environment, so it is refused.
 */
export function validateVariableMap(input: unknown, options: { allowNull?: boolean } = {}): Result<Record<string, string | null>, string> {
  if (input === undefined || input === null || typeof input !== 'object' || Array.isArray(input)) return fail('"variables" must be an object of NAME: "value" pairs');
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length > ENV_LIMITS.variables) return fail(`too many variables (${entries.length}; at most ${ENV_LIMITS.variables})`);
  const out: Record<string, string | null> = {};
  let bytes = 0;
  for (const [name, value] of entries) {
    const problem = checkVariableName(name);
    if (problem) return fail(problem);
    if (value === null && options.allowNull) {
      out[name] = null;
      continue;
    }
    if (typeof value !== 'string') return fail(`the value of ${name} must be a string${options.allowNull ? ' (or null to remove it)' : ''}`);
    if (value.includes('\0')) return fail(`the value of ${name} contains a NUL byte`);
    bytes += name.length + Buffer.byteLength(value);
    out[name] = value;
  }
  if (bytes > ENV_LIMITS.bytes) return fail(`the variables are too large (${bytes} bytes; at most ${ENV_LIMITS.bytes})`);
  return ok(out);
}

/** `current` with `patch` applied: a null removes the name. */
export function applyVariablePatch(current: Record<string, string>, patch: Record<string, string | null>): Record<string, string> {
  const next = { ...current };
  for (const [name, value] of Object.entries(patch)) {
    if (value === null) delete next[name];
    else next[name] = value;
  }
  return next;
}
