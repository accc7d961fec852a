import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import tar from 'tar-stream';
import { engineRequest, ensureRunnerImage, type Engine } from './images.ts';

/**
 * Workspace images for the docker driver's tests, made without a registry:
 * - busybox: the runner image's root filesystem (static busybox, no libc, no node);
 * - debian-like: bash and a few coreutils with the libraries `ldd` lists for them, taken from this
 *   machine, and an /etc/passwd. Small on purpose: the vfs storage driver copies an image whole
 *   for every container.
 */
export const BUSYBOX_WORKSPACE_IMAGE = 'wharf-test/workspace-busybox';
export const DEBIAN_WORKSPACE_IMAGE = 'wharf-test/workspace-debian';

export function ensureBusyboxWorkspaceImage(engine: Engine): Promise<string> {
  return ensureRunnerImage(engine, BUSYBOX_WORKSPACE_IMAGE);
}

const DEBIAN_PROGRAMS = ['bash', 'ls', 'cat', 'id', 'sleep', 'head', 'tail', 'mkdir', 'rm', 'stat', 'touch', 'env', 'grep', 'dd', 'whoami', 'chmod'];

function librariesOf(file: string): string[] {
  const out = execFileSync('ldd', [file], { encoding: 'utf8' });
  return out.split('\n').flatMap((line) => {
    const arrow = /=>\s+(\/\S+)/.exec(line);
    if (arrow) return [arrow[1]];
    const bare = /^\s*(\/\S+)\s+\(0x/.exec(line);
    return bare ? [bare[1]] : [];
  });
}

async function debianRootfs(): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  const mtime = new Date(0);
  const dirs = new Set<string>();
  const addDir = (dir: string, mode = 0o755) => {
    const parts = dir.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const path = parts.slice(0, i).join('/');
      if (dirs.has(path)) continue;
      dirs.add(path);
      pack.entry({ name: `${path}/`, type: 'directory', mode: path === 'tmp' ? 0o1777 : mode, mtime });
    }
  };
  for (const dir of ['bin', 'etc', 'tmp', 'root', 'home', 'usr/bin', 'run', 'var']) addDir(dir);
  const files = new Map<string, string>();
  for (const program of DEBIAN_PROGRAMS) {
    const path = execFileSync('bash', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim();
    files.set(`bin/${program}`, realpathSync(path));
    for (const lib of librariesOf(path)) files.set(lib.slice(1), realpathSync(lib));
  }
  for (const [name, source] of files) {
    addDir(name.split('/').slice(0, -1).join('/'));
    pack.entry({ name, mode: 0o755, mtime }, readFileSync(source));
  }
  pack.entry({ name: 'bin/sh', type: 'symlink', linkname: 'bash', mode: 0o777, mtime });
  pack.entry({ name: 'usr/bin/env', type: 'symlink', linkname: '../../bin/env', mode: 0o777, mtime });
  pack.entry({ name: 'etc/passwd', mode: 0o644, mtime }, 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n');
  pack.entry({ name: 'etc/group', mode: 0o644, mtime }, 'root:x:0:\nnogroup:x:65534:\n');
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Imports the debian-like workspace image once (idempotent). */
export async function ensureDebianWorkspaceImage(engine: Engine, name = DEBIAN_WORKSPACE_IMAGE): Promise<string> {
  const exists = await engineRequest(engine, 'GET', `/images/${encodeURIComponent(name)}/json`);
  if (exists.status === 200) return name;
  const res = await engineRequest(engine, 'POST', `/images/create?fromSrc=-&repo=${encodeURIComponent(name)}&tag=latest`, await debianRootfs(), { 'content-type': 'application/x-tar' });
  if (res.status !== 200) throw new Error(`${engine.name}: image import failed: ${res.status} ${res.body.toString()}`);
  return name;
}
