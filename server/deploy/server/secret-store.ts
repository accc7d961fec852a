import { randomBytes } from 'node:crypto';

/**
 * Hands a run's variables (and the server's kubeconfig) to its runner without putting them in
 * the build: the runner fetches them once, during its RUN step, with a random single-use token
 * that expires after `ttlMs` whether used or not. Tokens live in this server process only (the
 * runner calls back the replica that started the build).
 */
export type SecretPayload = { variables: Record<string, string>; kubeconfig: string | undefined };

export type SecretStore = {
  issue(payload: SecretPayload, runId: string): { token: string; expiresAt: number };
  /** Whether the token can still be used (for authentication), without using it. */
  peek(token: string): { runId: string; expiresAt: number } | undefined;
  /** Uses the token: the payload the first time, `undefined` ever after. */
  consume(token: string): SecretPayload | undefined;
  revoke(token: string): void;
};

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{32,64}$/;

export function createSecretStore(options: { ttlMs: number; now?: () => number }): SecretStore {
  const now = options.now ?? Date.now;
  const entries = new Map<string, { payload: SecretPayload; runId: string; expiresAt: number }>();

  const sweep = () => {
    const t = now();
    for (const [token, entry] of entries) if (entry.expiresAt <= t) entries.delete(token);
  };

  return {
    issue(payload, runId) {
      sweep();
      const token = randomBytes(32).toString('base64url');
      const expiresAt = now() + options.ttlMs;
      entries.set(token, { payload, runId, expiresAt });
      return { token, expiresAt };
    },
    peek(token) {
      if (!TOKEN_PATTERN.test(token)) return undefined;
      const entry = entries.get(token);
      if (!entry || entry.expiresAt <= now()) return undefined;
      return { runId: entry.runId, expiresAt: entry.expiresAt };
    },
    consume(token) {
      if (!TOKEN_PATTERN.test(token)) return undefined;
      const entry = entries.get(token);
      entries.delete(token);
      if (!entry || entry.expiresAt <= now()) return undefined;
      return entry.payload;
    },
    revoke(token) {
      entries.delete(token);
    },
  };
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The POSIX sh the runner sources: exports, and the kubeconfig written into its private folder. */
export function renderSecretScript(payload: SecretPayload): string {
  const lines = ['# wharf deploy variables (single use)'];
  for (const [name, value] of Object.entries(payload.variables)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) continue;
    lines.push(`export ${name}=${shellQuote(value)}`);
  }
  if (payload.kubeconfig !== undefined) {
    lines.push(`printf '%s' ${shellQuote(payload.kubeconfig)} > "$WHARF_SECRETS_DIR/kubeconfig"`);
    lines.push('chmod 600 "$WHARF_SECRETS_DIR/kubeconfig"');
    // A caller's own KUBECONFIG variable wins, as caller variables win everywhere else.
    if (!('KUBECONFIG' in payload.variables)) lines.push('export KUBECONFIG="$WHARF_SECRETS_DIR/kubeconfig"');
  }
  return `${lines.join('\n')}\n`;
}
