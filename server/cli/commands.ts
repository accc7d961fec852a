import { agentBridgeCommand } from './agent-bridge-command.ts';
import { installRuntimeCommand } from './install-runtime-command.ts';
import { deployCommand, destroyCommand } from './deploy-command.ts';
import { envCommand } from './env-command.ts';
import { configSetCommands, secretSetCommands, workspaceEnvCommand, workspaceEnvSetCommand, workspaceEnvUnsetCommand } from './env-settings-command.ts';
import { withDetach } from './detached-up.ts';
import { downCommand } from './down-command.ts';
import { loginCommand } from './login-command.ts';
import { proxyCommand } from './proxy-command.ts';
import { sshCommand } from './ssh-command.ts';
import { terminalAttachCommand, terminalListCommand } from './terminal-command.ts';
import type { CliCommand } from './types.ts';
import { upCommand } from './up-command.ts';
import { workspacesCommand } from './workspaces-command.ts';

/**
 * Every `wharf` command, in the order `wharf --help` lists them. Adding a command is one file
 * (`<name>-command.ts` exporting a `CliCommand`) and one line here.
 */
export const COMMANDS: CliCommand[] = [
  loginCommand,
  workspacesCommand,
  sshCommand,
  terminalAttachCommand, terminalListCommand,
  deployCommand,
  withDetach(upCommand), downCommand,
  envCommand,
  workspaceEnvCommand, workspaceEnvSetCommand, workspaceEnvUnsetCommand,
  ...configSetCommands,
  ...secretSetCommands,
  destroyCommand,
  proxyCommand,
  agentBridgeCommand,
  installRuntimeCommand,
];
