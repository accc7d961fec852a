import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readFileSync, readlinkSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
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

/*
 * The driver matrix's workspace image (docs/testing.md, "What the workspace image needs"): what the
 * matrix files run in a workspace, taken from this machine's Debian packages with the libraries
 * `ldd` lists for them — bash as `sh`, coreutils, grep, sed, findutils, procps, wget, vim, tar,
 * gzip and the terminfo entries — and `node` at this machine's `process.execPath`, a two-line
 * script that runs the runtime volume's node (the docker driver mounts it at /.wharf in every
 * workspace): tests may start `process.execPath` in a workspace, on either driver, without a
 * second copy of Node in the image (the vfs storage driver copies an image whole per container).
 * Tagged by a hash of its content: imported once per engine and content, quick when present.
 */
export const MATRIX_WORKSPACE_REPO = 'wharf-test/workspace';

const MATRIX_PACKAGES = ['bash', 'coreutils', 'grep', 'sed', 'findutils', 'procps', 'wget', 'tar', 'gzip', 'diffutils', 'ncurses-base'];
/** Files of packages that are not all wanted (vim's alternatives and its big runtime). */
const MATRIX_EXTRA_FILES: Record<string, string> = { 'usr/bin/vim': '/usr/bin/vim.basic' };
/** Only these parts of a package's file list. */
const MATRIX_KEEP = /^\/(usr\/)?(s?bin|lib\/terminfo|share\/terminfo)\//;

type RootEntry = { name: string; mode: number } & ({ type: 'file'; source: string } | { type: 'symlink'; linkname: string } | { type: 'text'; body: string });

/** Where a host path lands in the image: its folder resolved (merged /usr), its own name kept. */
function imagePath(path: string): string {
  return `${realpathSync(dirname(path))}/${basename(path)}`.slice(1);
}

function isElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    return head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    closeSync(fd);
  }
}

function libraryPathsOf(file: string): string[] {
  try {
    return librariesOf(file);
  } catch {
    return []; // a static binary: ldd fails, and it needs nothing
  }
}

function matrixRootEntries(): RootEntry[] {
  const entries = new Map<string, RootEntry>();
  const addFile = (name: string, source: string) => {
    if (entries.has(name)) return;
    entries.set(name, { name, type: 'file', source: realpathSync(source), mode: statSync(source).mode & 0o7777 });
    if (isElf(source)) for (const lib of libraryPathsOf(source)) addFile(imagePath(lib), lib);
  };
  for (const pkg of MATRIX_PACKAGES) {
    const listed = execFileSync('dpkg', ['-L', pkg], { encoding: 'utf8' }).split('\n').filter((p) => MATRIX_KEEP.test(p));
    for (const path of listed) {
      const st = lstatSync(path, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isSymbolicLink()) entries.set(imagePath(path), { name: imagePath(path), type: 'symlink', linkname: readlinkSync(path), mode: 0o777 });
      else if (st.isFile()) addFile(imagePath(path), path);
    }
  }
  for (const [name, source] of Object.entries(MATRIX_EXTRA_FILES)) addFile(name, source);
  const node = imagePath(process.execPath);
  entries.set(node, {
    name: node,
    type: 'text',
    mode: 0o755,
    body: '#!/bin/sh\n# The docker driver\'s runtime node (its read-only volume at /.wharf), for tests that start process.execPath.\nexec /.wharf/lib/ld-linux-x86-64.so.2 --library-path /.wharf/lib /.wharf/bin/node "$@"\n',
  });
  entries.set('usr/bin/sh', { name: 'usr/bin/sh', type: 'symlink', linkname: 'bash', mode: 0o777 });
  const text = (name: string, body: string, mode = 0o644) => entries.set(name, { name, type: 'text', body, mode });
  text('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\nwharf:x:65534:65534:wharf:/home/wharf:/bin/bash\n');
  text('etc/group', 'root:x:0:\nwharf:x:65534:\n');
  return [...entries.values()].sort((a, b) => a.name.localeCompare(b.name));
}

async function packRoot(entries: RootEntry[]): Promise<{ tar: Buffer; hash: string }> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  const hash = createHash('sha256');
  const mtime = new Date(0);
  const dirs = new Set<string>();
  const addDir = (dir: string) => {
    const parts = dir.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const path = parts.slice(0, i).join('/');
      if (dirs.has(path)) continue;
      dirs.add(path);
      pack.entry({ name: `${path}/`, type: 'directory', mode: path === 'tmp' || path === 'var/tmp' ? 0o1777 : 0o755, mtime });
    }
  };
  for (const dir of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64', 'etc', 'tmp', 'var/tmp', 'root', 'home', 'run', 'dev', 'proc', 'sys']) addDir(dir);
  // Merged /usr, as on Debian 12.
  for (const link of ['bin', 'sbin', 'lib', 'lib64']) pack.entry({ name: link, type: 'symlink', linkname: `usr/${link}`, mode: 0o777, mtime });
  for (const entry of entries) {
    addDir(dirname(entry.name));
    if (entry.type === 'symlink') {
      hash.update(`${entry.name}\0->${entry.linkname}\0`);
      pack.entry({ name: entry.name, type: 'symlink', linkname: entry.linkname, mode: entry.mode, mtime });
    } else {
      const body = entry.type === 'file' ? readFileSync(entry.source) : Buffer.from(entry.body);
      hash.update(`${entry.name}\0${entry.mode}\0`).update(body);
      pack.entry({ name: entry.name, mode: entry.mode, mtime }, body);
    }
  }
  pack.finalize();
  await done;
  return { tar: Buffer.concat(chunks), hash: hash.digest('hex').slice(0, 16) };
}

/**
 * Imports the matrix workspace image unless the engine has it already (its tag is its content's
 * hash) and tags it `:latest` too (driver-matrix.ts's default). Gives the hash-tagged name.
 */
export async function ensureMatrixWorkspaceImage(engine: Engine, repo = MATRIX_WORKSPACE_REPO): Promise<string> {
  const { tar: rootfs, hash } = await packRoot(matrixRootEntries());
  const name = `${repo}:${hash}`;
  const exists = await engineRequest(engine, 'GET', `/images/${encodeURIComponent(name)}/json`);
  if (exists.status !== 200) {
    const res = await engineRequest(engine, 'POST', `/images/create?fromSrc=-&repo=${encodeURIComponent(repo)}&tag=${hash}`, rootfs, { 'content-type': 'application/x-tar' });
    if (res.status !== 200 || /"error"/.test(res.body.toString())) throw new Error(`${engine.name}: import of ${name} failed: ${res.status} ${res.body.toString()}`);
  }
  const tagged = await engineRequest(engine, 'POST', `/images/${encodeURIComponent(name)}/tag?repo=${encodeURIComponent(repo)}&tag=latest`);
  if (tagged.status !== 201 && tagged.status !== 200) throw new Error(`${engine.name}: tagging ${name} as ${repo}:latest failed: ${tagged.status} ${tagged.body.toString()}`);
  return name;
}
