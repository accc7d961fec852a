/**
 * Wire types of hybrid mode's environment API (docs/hybrid.md), here so the web UI can take them
 * as types. The resolution itself is server/hybrid/environment.ts.
 */

/**
 * One variable of a resolved environment. `source` is the layer it came from: `local`,
 * `manifest`, `dev-container`, `spec`, `config-set:<name>`, `secret-set:<name>` or `image`.
 * `secret`: a secret set defines the name (whichever layer won), so it is masked wherever it is
 * shown. `value` is null when the server left a secret's value out.
 */
export type ResolvedVariable = { name: string; value: string | null; source: string; secret: boolean };

/** The workspace process the dev-container layer was read from, and how many processes matched. */
export type ServiceProcess = { pid: number; command: string; matches: number };

/** `GET /api/workspaces/:id/hybrid/env?service=<name>`. */
export type ResolvedEnvironment = {
  service: string;
  process: ServiceProcess | null;
  variables: ResolvedVariable[];
  /** Plain sentences about the layers (an empty dev-container layer and why). */
  notes: string[];
};

/** A config set as `GET …/config-sets` lists it: every value. */
export type ConfigSetInfo = { name: string; variables: Record<string, string> };

/** A secret set as `GET …/secret-sets` lists it: names only, never a value. */
export type SecretSetInfo = { name: string; keys: string[] };
