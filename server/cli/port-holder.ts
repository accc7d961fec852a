import { readdir, readFile, readlink } from 'node:fs/promises';

/**
 * Which process listens on a local TCP port, for the "port already in use" message. Linux only
 * (read from /proc/net/tcp{,6} and each process's open sockets); `undefined` when it cannot be
 * told (another OS, another user's process): the message then just says the port is in use.
 * No library does this without running `lsof`/`ss`, which a developer's machine may lack.
 */
export async function findPortHolder(port: number): Promise<{ pid: number; command: string } | undefined> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is HEX_IP:HEX_PORT; state 0A is LISTEN; the inode is the 10th field.
      if (fields.length < 10 || fields[3] !== '0A') continue;
      if (parseInt(fields[1].split(':')[1] ?? '', 16) === port) inodes.add(fields[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  const pids = await readdir('/proc').catch(() => [] as string[]);
  for (const pid of pids) {
    if (!/^\d+$/.test(pid)) continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) {
        const command = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean).join(' ');
        return { pid: Number(pid), command: command || (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim() };
      }
    }
  }
  return undefined;
}
