import { parseServerUrl, saveCredentials } from './credentials.ts';
import type { CliCommand, CliIo } from './types.ts';

async function readFirstLine(stdin: CliIo['stdin']): Promise<string> {
  let text = '';
  for await (const chunk of stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split('\n')[0].trim();
}

export const loginCommand: CliCommand = {
  name: ['login'],
  summary: 'log in to a wharf server and remember it',
  usage: 'login <server url> --token <token>',
  description: `
Checks the token against the server, then stores {url, token} in
$XDG_CONFIG_HOME/wharf/credentials.json (or ~/.config/wharf/credentials.json), readable
only by you. The login URL printed by the server (".../login?token=...") is accepted as is.
Use "--token -" to read the token from standard input (keeps it out of shell history).`,
  options: {
    token: { type: 'string', short: 't', valueName: '<token>', description: 'the admin token printed by the server ("-" reads it from stdin)' },
  },
  async run(ctx, args) {
    const [rawUrl, extra] = args.positionals;
    if (!rawUrl || extra !== undefined) return ctx.fail({ code: 'usage', message: 'usage: wharf login <server url> --token <token>' });
    const parsed = parseServerUrl(rawUrl);
    if (!parsed.ok) return ctx.fail(parsed.error);
    let token = typeof args.values.token === 'string' ? args.values.token : parsed.value.token;
    if (token === '-') token = await readFirstLine(ctx.io.stdin);
    if (!token) return ctx.fail({ code: 'usage', message: 'a token is required: wharf login <server url> --token <token>' });

    const { url } = parsed.value;
    const api = ctx.connect({ url, token });
    const check = await api.json<{ workspaces: unknown[] }>('GET', '/api/workspaces');
    if (!check.ok) {
      if (check.error.code === 'unauthorized') {
        return ctx.fail({ code: 'unauthorized', message: `the server at ${url} refused that token (401 Unauthorized); nothing was saved` });
      }
      if (check.error.code === 'not_found') {
        return ctx.fail({ code: 'not_found', message: `${url} does not look like a wharf server (no /api/workspaces); nothing was saved` });
      }
      return ctx.fail(check.error);
    }
    if (!Array.isArray(check.value?.workspaces)) {
      return ctx.fail({ code: 'server', message: `${url} does not look like a wharf server; nothing was saved` });
    }
    try {
      await saveCredentials(ctx.config, { url, token });
    } catch (err) {
      return ctx.fail({ code: 'local', message: `cannot save credentials to ${ctx.config.credentialsFile}: ${(err as Error).message}` });
    }
    ctx.io.stdout.write(`Logged in to ${url} (credentials saved in ${ctx.config.credentialsFile}).\n`);
    return 0;
  },
};
