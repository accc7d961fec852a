import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { AgentFeature, SubsystemContext } from '../../agent/index.ts';
import { createFrameDecoder, encodeFrame } from '../../common/index.ts';
import { HYBRID_SUBSYSTEM, SERVICE_MARKER, type HybridAgentRequest, type HybridServiceEnvReply, type ServiceProcess } from '../index.ts';

/**
 * The agent's half of hybrid mode's environment: which workspace process serves a service, and
 * what environment it really has. On the process driver a service's process is one started with
 * `WHARF_SERVICE=<name>` in its environment (`WHARF_SERVICE=api npm start` in a terminal); of
 * those, the newest. It must also carry this workspace's `WHARF_WORKSPACE` (which every process
 * the agent starts inherits): without the sandbox, other workspaces' processes are visible too.
 *
 * `/proc/<pid>/environ` is the environment the process was started with: what it changed in
 * itself later (setenv) is not there. Shell bookkeeping (PWD, OLDPWD, SHLVL, `_`) is left out:
 * it describes the shell that started the process, not the service.
 */
export type ServiceEnvOptions = {
  /** The agent's --root: every workspace process has it as WHARF_WORKSPACE. */
  root: string;
  /** The base environment the agent gives workspace processes: the image layer. */
  env: Record<string, string>;
  /** `/proc`, or a folder laid out like it (tests). */
  procDir?: string;
};

const SKIPPED = new Set(['PWD', 'OLDPWD', 'SHLVL', '_']);
/** An environment larger than this is not a real one (the kernel's own limit is about 2 MiB of args and env together). */
const MAX_ENVIRON_BYTES = 4 * 1024 * 1024;
const MAX_REQUEST_BYTES = 16 * 1024;
const MAX_COMMAND_CHARS = 200;

export function parseEnviron(data: Buffer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of data.toString('utf8').split('\0')) {
    const at = entry.indexOf('=');
    if (at <= 0) continue;
    env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return env;
}

async function readLimited(path: string, maxBytes: number): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return undefined; // gone, or another user's process
  }
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buffer = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) return undefined;
      chunks.push(buffer.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks);
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/** Field 22 of /proc/<pid>/stat (clock ticks after boot): the order processes were started in. */
async function startTicks(procDir: string, pid: number): Promise<number> {
  const stat = await readFile(join(procDir, String(pid), 'stat'), 'utf8').catch(() => '');
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[19]) || 0;
}

async function commandLine(procDir: string, pid: number): Promise<string> {
  const raw = await readLimited(join(procDir, String(pid), 'cmdline'), 64 * 1024);
  const text = raw ? raw.toString('utf8').split('\0').filter(Boolean).join(' ') : '';
  return text.length > MAX_COMMAND_CHARS ? `${text.slice(0, MAX_COMMAND_CHARS - 1)}…` : text;
}

/** The newest process of this workspace serving `service`, and the environment it was started with. */
export async function findServiceProcess(service: string, options: ServiceEnvOptions): Promise<{ process: ServiceProcess; environment: Record<string, string> } | undefined> {
  const procDir = options.procDir ?? '/proc';
  const entries = await readdir(procDir).catch(() => [] as string[]);
  const matches: Array<{ pid: number; environment: Record<string, string>; ticks: number }> = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const raw = await readLimited(join(procDir, entry, 'environ'), MAX_ENVIRON_BYTES);
    // Cheap test before parsing: most processes do not carry the marker at all.
    if (!raw || !raw.includes(`${SERVICE_MARKER}=`)) continue;
    const environment = parseEnviron(raw);
    if (environment[SERVICE_MARKER] !== service || environment.WHARF_WORKSPACE !== options.root) continue;
    matches.push({ pid, environment, ticks: await startTicks(procDir, pid) });
  }
  if (matches.length === 0) return undefined;
  matches.sort((a, b) => b.ticks - a.ticks || b.pid - a.pid);
  const newest = matches[0];
  const environment = Object.fromEntries(Object.entries(newest.environment).filter(([name]) => !SKIPPED.has(name)));
  return { process: { pid: newest.pid, command: await commandLine(procDir, newest.pid), matches: matches.length }, environment };
}

const replyFrame = (reply: HybridServiceEnvReply): Buffer => encodeFrame(Buffer.from(JSON.stringify(reply)));

/** Serves `wharf-hybrid` (../protocol.ts) to the control server's key. */
export function createServiceEnvFeature(options: ServiceEnvOptions): AgentFeature {
  return {
    subsystems: {
      [HYBRID_SUBSYSTEM]: (stream: Duplex, context: SubsystemContext) => {
        stream.on('error', () => {});
        if (context.grant.role !== 'admin') {
          stream.end(replyFrame({ ok: false, error: 'forbidden' }));
          return;
        }
        let handled = false;
        const decoder = createFrameDecoder(MAX_REQUEST_BYTES, {
          onError: (e) => {
            handled = true;
            stream.end(replyFrame({ ok: false, error: e.message }));
          },
          onFrame: (frame) => {
            if (handled) return;
            handled = true;
            let request: HybridAgentRequest;
            try {
              request = JSON.parse(frame.toString('utf8')) as HybridAgentRequest;
            } catch {
              stream.end(replyFrame({ ok: false, error: 'request is not JSON' }));
              return;
            }
            if (request.op !== 'service-env' || typeof request.service !== 'string') {
              stream.end(replyFrame({ ok: false, error: 'unknown op' }));
              return;
            }
            findServiceProcess(request.service, options).then(
              (found) => stream.end(replyFrame({ ok: true, process: found?.process ?? null, environment: found?.environment ?? {}, image: options.env })),
              (err: Error) => stream.end(replyFrame({ ok: false, error: err.message })),
            );
          },
        });
        stream.on('data', (chunk: Buffer) => decoder.push(chunk));
      },
    },
  };
}
