export { COMMANDS } from './commands.ts';
export { createCliContext, runCli, formatCommandHelp, formatOverview } from './run-cli.ts';
export type { ApiClient, CliArgs, CliCommand, CliContext, CliFailure, CliIo, CliOption, RequestInit } from './types.ts';
