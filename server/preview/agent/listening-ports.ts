import { readdir, readFile, readlink } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { ListeningPort } from '../protocol.ts';
import { parseProcNetTcp, type ListeningSocket } from './proc-net.ts';

export type PortScanOptions = {
  /** Where /proc is (a test may point elsewhere). */
  procDir?: string;
  /** The agent's pid: its descendants are the workspace's processes. */
  agentPid: number;
  /** The workspace root: a process whose cwd is inside it belongs to the workspace too. */
  root: string;
};

type ProcessInfo = { pid: number; ppid: number };

async function readText(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

/** `pid (comm) state ppid ...`: the comm may hold spaces and parentheses, so split at the last `)`. */
function parseStat(pid: number, text: string): ProcessInfo | undefined {
  const close = text.lastIndexOf(')');
  const ppid = Number(text.slice(close + 2).split(' ')[1]);
  return close > 0 && Number.isInteger(ppid) ? { pid, ppid } : undefined;
}

/**
 * The processes that are the workspace's: the agent, everything it started (terminals, commands,
 * their children) and, since a daemonised server is re-parented away from its starter, every
 * process whose working directory is inside the workspace. On the process driver /proc shows the
 * whole host; nothing else is looked at, so another workspace's ports are never listed.
 */
async function listWorkspaceProcesses(procDir: string, options: PortScanOptions): Promise<number[]> {
  const pids = (await readdir(procDir).catch(() => [] as string[])).filter((name) => /^\d+$/.test(name)).map(Number);
  const infos = (await Promise.all(pids.map(async (pid) => {
    const text = await readText(join(procDir, String(pid), 'stat'));
    return text === undefined ? undefined : parseStat(pid, text);
  }))).filter((info): info is ProcessInfo => info !== undefined);
  const children = new Map<number, number[]>();
  for (const info of infos) children.set(info.ppid, [...(children.get(info.ppid) ?? []), info.pid]);
  const mine = new Set<number>();
  const visit = (pid: number) => {
    if (mine.has(pid)) return;
    mine.add(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  visit(options.agentPid);
  const rootPrefix = options.root.endsWith(sep) ? options.root : options.root + sep;
  await Promise.all(infos.filter((info) => !mine.has(info.pid)).map(async (info) => {
    const cwd = await readlink(join(procDir, String(info.pid), 'cwd')).catch(() => undefined);
    if (cwd !== undefined && (cwd === options.root || cwd.startsWith(rootPrefix))) visit(info.pid);
  }));
  return [...mine];
}

/** socket inode → owning pid, from the fd links (`socket:[<inode>]`) of the given processes. */
async function mapSocketOwners(procDir: string, pids: number[], wanted: Set<number>): Promise<Map<number, number>> {
  const owners = new Map<number, number>();
  await Promise.all(pids.map(async (pid) => {
    const fdDir = join(procDir, String(pid), 'fd');
    const fds = await readdir(fdDir).catch(() => [] as string[]);
    await Promise.all(fds.map(async (fd) => {
      const link = await readlink(join(fdDir, fd)).catch(() => '');
      const match = /^socket:\[(\d+)\]$/.exec(link);
      if (!match) return;
      const inode = Number(match[1]);
      if (wanted.has(inode) && !owners.has(inode)) owners.set(inode, pid);
    }));
  }));
  return owners;
}

/**
 * The TCP ports the workspace's processes listen on, with the process of each, sorted by port.
 * Listening sockets no workspace process holds (the host's own, other workspaces') are left out.
 */
export async function scanListeningPorts(options: PortScanOptions): Promise<ListeningPort[]> {
  const procDir = options.procDir ?? '/proc';
  const sockets: ListeningSocket[] = [];
  for (const file of ['tcp', 'tcp6']) {
    const text = await readText(join(procDir, 'net', file));
    if (text !== undefined) sockets.push(...parseProcNetTcp(text));
  }
  if (sockets.length === 0) return [];
  const pids = await listWorkspaceProcesses(procDir, options);
  const owners = await mapSocketOwners(procDir, pids, new Set(sockets.map((s) => s.inode)));
  const byPort = new Map<number, ListeningPort>();
  for (const socket of sockets) {
    const pid = owners.get(socket.inode);
    if (pid === undefined) continue;
    let entry = byPort.get(socket.port);
    if (!entry) {
      const comm = (await readText(join(procDir, String(pid), 'comm')))?.trim();
      entry = { port: socket.port, addresses: [], pid, ...(comm ? { process: comm } : {}) };
      byPort.set(socket.port, entry);
    }
    if (!entry.addresses.includes(socket.address)) entry.addresses.push(socket.address);
  }
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}
