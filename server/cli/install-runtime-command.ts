import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { collectRuntime, writeRuntimeTo } from '../workspace/index.ts';
import type { CliCommand } from './types.ts';

export const installRuntimeCommand: CliCommand = {
  name: ['agent', 'install-runtime'],
  summary: 'write the workspace agent\'s runtime (node, libraries, agent, supervisor) into a folder (used by the kubernetes driver\'s init container)',
  usage: 'agent install-runtime <dir> [--agent-bundle <dir>] [--mkdir <dir>]...',
  description: `
Runs in the wharf image as the init container of every Kubernetes workspace pod: it writes
bin/node (this helper's node), lib/ (the libraries ldd lists for node and the agent's add-ons,
the dynamic loader, and lib/ld.so linking to it), agent/ (the built agent) and supervise.mjs into
<dir>, the pod's shared emptyDir, so the agent runs in any workspace image. --mkdir makes
folders the workspace user must own (the PVC's folders), as this user.`,
  options: {
    'agent-bundle': { type: 'string', valueName: '<dir>', description: 'the built agent (default: WHARF_AGENT_BUNDLE, agent/ beside this helper, or the checkout\'s dist/agent)' },
    mkdir: { type: 'string', multiple: true, valueName: '<dir>', description: 'also make this folder (and its parents)' },
  },
  async run(ctx, args) {
    if (args.positionals.length !== 1) return ctx.fail({ code: 'usage', message: 'usage: wharf agent install-runtime <dir>' });
    const target = resolve(args.positionals[0]);
    const given = args.values['agent-bundle'];
    const candidates = typeof given === 'string' ? [given] : ctx.config.agentBundles;
    const bundle = candidates.find((dir) => existsSync(join(dir, 'agent.mjs')));
    if (!bundle) return ctx.fail({ code: 'local', message: `the built agent is not in ${candidates.join(' or ')}: run "npm run build", or pass --agent-bundle` });
    try {
      for (const dir of (args.values.mkdir as string[] | undefined) ?? []) await mkdir(dir, { recursive: true, mode: 0o755 });
      const runtime = await collectRuntime(ctx.config.nodePath, bundle);
      const written = await writeRuntimeTo(target, runtime);
      ctx.io.stdout.write(`wharf runtime ${runtime.hash} written to ${target}: ${written.files} files, ${(written.bytes / 1024 / 1024).toFixed(1)} MiB\n`);
      return 0;
    } catch (err) {
      return ctx.fail({ code: 'local', message: `cannot install the runtime into ${target}: ${(err as Error).message}` });
    }
  },
};
