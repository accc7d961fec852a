import { parseArgs, type ParseArgsConfig } from 'node:util';
import { fail, ok, wharfVersion, type Result } from '../common/index.ts';
import type { CliConfig } from '../config/index.ts';
import { createApiClient } from './api-client.ts';
import { readCredentials } from './credentials.ts';
import type { CliArgs, CliCommand, CliContext, CliFailure, CliIo, CliOption } from './types.ts';
import { describeRuntime } from './runtime-info.ts';
import { createVersionNotice } from './version-notice.ts';

const HELP_OPTION: CliOption = { type: 'boolean', short: 'h', description: 'show this help' };

function optionsOf(command: CliCommand): Record<string, CliOption> {
  return { ...(command.options ?? {}), help: HELP_OPTION };
}

function formatOptions(command: CliCommand): string[] {
  const rows = Object.entries(optionsOf(command)).map(([name, o]) => {
    const value = o.type === 'string' ? ` ${o.valueName ?? '<value>'}` : '';
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${value}`;
    return [flag, `${o.description}${o.multiple ? ' (repeatable)' : ''}`] as const;
  });
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return rows.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`);
}

export function formatCommandHelp(command: CliCommand): string {
  const lines = [`Usage: wharf ${command.usage}`, '', command.summary];
  if (command.description) lines.push('', command.description.trim());
  lines.push('', 'Options:', ...formatOptions(command));
  return `${lines.join('\n')}\n`;
}

export function formatOverview(commands: CliCommand[], prefix: string[] = []): string {
  const shown = commands.filter((c) => prefix.every((word, i) => c.name[i] === word));
  const rows = shown.map((c) => [c.name.join(' '), c.summary] as const);
  const width = Math.max(...rows.map(([n]) => n.length));
  const title = prefix.length ? `wharf ${prefix.join(' ')} <command>` : 'wharf <command> [options]';
  return [
    `Usage: ${title}`,
    '',
    ...(prefix.length ? [] : ['The wharf helper: log in to a wharf server and reach its workspaces.', '']),
    'Commands:',
    ...rows.map(([n, s]) => `  ${n.padEnd(width)}  ${s}`),
    '',
    'Run "wharf <command> --help" for the options of a command.',
    '',
  ].join('\n');
}

/** The command whose name is the longest prefix of argv (options may not come before it). */
function findCommand(commands: CliCommand[], argv: string[]): { command: CliCommand; rest: string[] } | undefined {
  let best: CliCommand | undefined;
  for (const c of commands) {
    if (c.name.every((word, i) => argv[i] === word) && (!best || c.name.length > best.name.length)) best = c;
  }
  return best && { command: best, rest: argv.slice(best.name.length) };
}

/** Splits off what follows `--` or the `passthroughAfter`-th positional before option parsing. */
function splitPassthrough(command: CliCommand, argv: string[]): { head: string[]; rest: string[] } {
  const options = optionsOf(command);
  const takesValue = (arg: string): boolean => {
    if (arg.includes('=')) return false;
    if (arg.startsWith('--')) return options[arg.slice(2)]?.type === 'string';
    const short = arg.slice(1);
    return Object.values(options).some((o) => o.short === short && o.type === 'string');
  };
  let positionals = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') return { head: argv.slice(0, i), rest: argv.slice(i + 1) };
    if (arg.startsWith('-') && arg !== '-') {
      if (takesValue(arg)) i++;
      continue;
    }
    positionals++;
    if (command.passthroughAfter !== undefined && positionals === command.passthroughAfter) {
      const rest = argv.slice(i + 1);
      return { head: argv.slice(0, i + 1), rest: rest[0] === '--' ? rest.slice(1) : rest };
    }
  }
  return { head: argv, rest: [] };
}

function parseCommandArgs(command: CliCommand, argv: string[]): Result<CliArgs & { help: boolean }, CliFailure> {
  const { head: given, rest } = splitPassthrough(command, argv);
  // `--flag=false` / `--flag=true` for a boolean option (`wharf deploy --remote=false`).
  const turnedOff: string[] = [];
  const head = given.flatMap((arg) => {
    const match = /^--([^=]+)=(true|false)$/.exec(arg);
    if (!match || optionsOf(command)[match[1]]?.type !== 'boolean') return [arg];
    if (match[2] === 'true') return [`--${match[1]}`];
    turnedOff.push(match[1]);
    return [];
  });
  try {
    const { values, positionals } = parseArgs({
      args: head,
      options: Object.fromEntries(
        Object.entries(optionsOf(command)).map(([name, o]) => [
          name,
          { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) },
        ]),
      ) as ParseArgsConfig['options'],
      strict: true,
      allowPositionals: true,
    });
    const { help, ...others } = values as Record<string, string | boolean | string[] | undefined>;
    for (const name of turnedOff) others[name] = false;
    return ok({ positionals, values: others, rest, help: help === true });
  } catch (err) {
    return fail({ code: 'usage', message: `${(err as Error).message}\nRun "wharf ${command.name.join(' ')} --help" for usage.` });
  }
}

/**
 * `helperVersion` is this helper's own (baked in at build time, or package.json's in a checkout);
 * only unit tests pass another.
 */
export function createCliContext(config: CliConfig, io: CliIo, options: { helperVersion?: string } = {}): CliContext {
  const helperVersion = options.helperVersion ?? wharfVersion();
  // One notice per command: every client of this command shares it.
  const onServerVersion = createVersionNotice(helperVersion, io.stderr);
  const connect: CliContext['connect'] = (credentials) => createApiClient(credentials, { requestTimeoutMs: config.limits.requestTimeoutMs, onServerVersion });
  return {
    config,
    io,
    helperVersion,
    connect,
    async api() {
      const credentials = await readCredentials(config);
      if (!credentials.ok) return credentials;
      return ok(connect(credentials.value));
    },
    fail(failure) {
      io.stderr.write(`wharf: ${failure.message}\n`);
      return failure.code === 'usage' ? 2 : 1;
    },
  };
}

/** Runs one command line; resolves to the process exit code. */
export async function runCli(commands: CliCommand[], ctx: CliContext): Promise<number> {
  const argv = ctx.config.argv;
  const first = argv[0];
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? findCommand(commands, argv.slice(1)) : undefined;
    if (first === 'help' && argv.length > 1 && !topic) {
      const group = argv.slice(1);
      if (commands.some((c) => group.every((w, i) => c.name[i] === w))) {
        ctx.io.stdout.write(formatOverview(commands, group));
        return 0;
      }
      return ctx.fail({ code: 'usage', message: `unknown command "${group.join(' ')}"; run "wharf --help"` });
    }
    ctx.io.stdout.write(topic ? formatCommandHelp(topic.command) : formatOverview(commands));
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-V') {
    // The first line alone is what scripts (and build-sea's self-check) read.
    const verbose = argv.includes('--verbose') || argv.includes('-v');
    ctx.io.stdout.write([`wharf ${ctx.helperVersion}`, ...(verbose ? describeRuntime() : [])].map((line) => `${line}\n`).join(''));
    return 0;
  }
  const found = findCommand(commands, argv);
  if (!found) {
    // `wharf agent` alone: show the commands of that group.
    const group = argv.filter((a) => !a.startsWith('-'));
    for (let n = group.length; n > 0; n--) {
      const prefix = group.slice(0, n);
      if (commands.some((c) => c.name.length > n && prefix.every((w, i) => c.name[i] === w))) {
        const wantsHelp = argv.includes('--help') || argv.includes('-h');
        (wantsHelp ? ctx.io.stdout : ctx.io.stderr).write(formatOverview(commands, prefix));
        return wantsHelp ? 0 : 2;
      }
    }
    return ctx.fail({ code: 'usage', message: `unknown command "${first}"; run "wharf --help" for the list` });
  }
  const parsed = parseCommandArgs(found.command, found.rest);
  if (!parsed.ok) return ctx.fail(parsed.error);
  if (parsed.value.help) {
    ctx.io.stdout.write(formatCommandHelp(found.command));
    return 0;
  }
  const { help: _help, ...args } = parsed.value;
  return found.command.run(ctx, args);
}
