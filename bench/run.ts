/**
 * `npm run bench [-- FILTER...] [--write] [--list]`
 *
 * Runs every `bench/*.bench.ts` (or those whose name contains a FILTER) one after another, prints
 * one markdown table, and with `--write` puts the rows into docs/benchmarks.md together with the
 * command line, date and machine. Engines are started the way `npm test` starts them
 * (scripts/engines.sh), with the same WHARF_TEST_* variables.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import type { BenchEngine, BenchModule, BenchRow } from './types.ts';

const run = promisify(execFile);
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const benchDir = join(root, 'bench');
const docFile = join(root, 'docs', 'benchmarks.md');

const BEGIN = '<!-- bench:begin -->';
const END = '<!-- bench:end -->';
const DATA_PREFIX = '<!-- bench:data ';

type Machine = { cores: number; cpu: string; memoryGiB: number; node: string; kernel: string };
type FileResult = { command: string; date: string; machine: Machine; rows: BenchRow[] };
type StoredResults = { files: Record<string, FileResult> };

const ENGINE_MARKERS: Record<BenchEngine, RegExp> = {
  docker: /WHARF_TEST_DOCKER_HOST|\/tmp\/wharf-dockerd\/docker\.sock/,
  podman: /WHARF_TEST_PODMAN_HOST|\/tmp\/wharf-podman\.sock/,
  chromium: /WHARF_TEST_CHROMIUM/,
};

function readMachine(): Machine {
  const cpuList = cpus();
  return {
    cores: cpuList.length,
    cpu: cpuList[0]?.model.trim() ?? 'unknown CPU',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: `Linux ${release()}`,
  };
}

async function findBenchFiles(filters: string[]): Promise<string[]> {
  const names = (await readdir(benchDir)).filter((name) => name.endsWith('.bench.ts')).sort();
  if (filters.length === 0) return names;
  return names.filter((name) => filters.some((filter) => name.replace(/\.bench\.ts$/, '').includes(filter)));
}

/** Engines a file needs: those it declares, plus those whose variables or sockets its source names. */
async function enginesOf(file: string, mod: Partial<BenchModule>): Promise<BenchEngine[]> {
  const source = await readFile(join(benchDir, file), 'utf8');
  const found = new Set<BenchEngine>(mod.engines ?? []);
  for (const [engine, marker] of Object.entries(ENGINE_MARKERS) as [BenchEngine, RegExp][]) {
    if (marker.test(source)) found.add(engine);
  }
  return [...found];
}

async function callEngines(verb: 'packages' | 'start' | 'stop', engines: BenchEngine[]): Promise<string> {
  // The lease is ours (this process), so a concurrent `npm test` never stops an engine we use.
  const { stdout, stderr } = await run('bash', [join(root, 'scripts', 'engines.sh'), verb, ...engines], {
    cwd: root,
    env: { ...process.env, WHARF_LEASE_PID: String(process.pid) },
    maxBuffer: 16 * 1024 * 1024,
  });
  if (stderr.trim()) process.stderr.write(stderr);
  return stdout;
}

async function startEngines(engines: BenchEngine[]): Promise<void> {
  await callEngines('packages', []);
  const stdout = await callEngines('start', engines);
  for (const line of stdout.split('\n')) {
    const match = /^(WHARF_TEST_[A-Z_]+)=(.*)$/.exec(line);
    if (match) process.env[match[1]] = match[2];
  }
}

function escapeCell(value: string): string {
  return value.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function formatTable(rows: BenchRow[]): string {
  const lines = ['| Scenario | Metric | wharf | Peer | Peer result | Goal |', '| --- | --- | --- | --- | --- | --- |'];
  for (const row of rows) {
    const cells = [row.scenario, row.metric, row.wharf, row.peerName, row.peer, row.goal ?? ''];
    lines.push(`| ${cells.map(escapeCell).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** JSON inside an HTML comment must not contain "--"; "\u002d" is the same character to JSON. */
function encodeData(data: StoredResults): string {
  return `${DATA_PREFIX}${JSON.stringify(data).replace(/--/g, '-\\u002d')} -->`;
}

function decodeData(section: string): StoredResults {
  const start = section.indexOf(DATA_PREFIX);
  if (start < 0) return { files: {} };
  const end = section.indexOf(' -->', start);
  try {
    const parsed = JSON.parse(section.slice(start + DATA_PREFIX.length, end)) as StoredResults;
    return parsed && typeof parsed.files === 'object' ? parsed : { files: {} };
  } catch {
    throw new Error(`${docFile}: the stored benchmark data between ${BEGIN} and ${END} is not valid JSON; fix or delete that comment`);
  }
}

function renderSection(data: StoredResults): string {
  const files = Object.keys(data.files).sort();
  const rows = files.flatMap((file) => data.files[file].rows);
  const runs = files.map((file) => {
    const r = data.files[file];
    const m = r.machine;
    return `- \`${file}\`: \`${r.command}\` on ${r.date} — ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.kernel}`;
  });
  return [
    BEGIN,
    '',
    rows.length ? formatTable(rows) : '_No results yet: run `npm run bench -- --write`._',
    '',
    ...(runs.length ? ['Measured with:', '', ...runs, ''] : []),
    encodeData(data),
    END,
  ].join('\n');
}

async function writeResults(results: Map<string, FileResult>): Promise<void> {
  const doc = await readFile(docFile, 'utf8');
  const begin = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${docFile} has no ${BEGIN} … ${END} section to replace`);
  const data = decodeData(doc.slice(begin, end));
  for (const [file, result] of results) data.files[file] = result;
  // A bench file that no longer exists takes its rows with it.
  const existing = new Set((await readdir(benchDir)).filter((name) => name.endsWith('.bench.ts')));
  for (const file of Object.keys(data.files)) if (!existing.has(file)) delete data.files[file];
  await writeFile(docFile, doc.slice(0, begin) + renderSection(data) + doc.slice(end + END.length));
}

async function runBenchmarks(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: { write: { type: 'boolean', default: false }, list: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const files = await findBenchFiles(positionals);
  if (values.list) {
    for (const file of files) console.log(file);
    return 0;
  }
  if (files.length === 0) {
    console.error(positionals.length ? `no bench/*.bench.ts matches ${positionals.join(', ')}` : 'no bench/*.bench.ts files yet');
    return 1;
  }

  const modules = new Map<string, Partial<BenchModule>>();
  const engines = new Set<BenchEngine>();
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(benchDir, file)).href)) as Partial<BenchModule>;
    if (typeof mod.run !== 'function') throw new Error(`bench/${file} must export "async function run(): Promise<BenchRow[]>"`);
    modules.set(file, mod);
    for (const engine of await enginesOf(file, mod)) engines.add(engine);
  }

  const needed = [...engines].sort();
  let failures = 0;
  const results = new Map<string, FileResult>();
  const command = ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');
  const machine = readMachine();
  if (needed.length) {
    console.error(`bench: starting ${needed.join(', ')}`);
    await startEngines(needed);
  }
  try {
    for (const [file, mod] of modules) {
      const started = performance.now();
      console.error(`bench: ${file} …`);
      try {
        const rows = await mod.run!();
        results.set(file, { command, date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', machine, rows });
        console.error(`bench: ${file} done in ${((performance.now() - started) / 1000).toFixed(1)}s (${rows.length} rows)`);
      } catch (err) {
        failures++;
        console.error(`bench: ${file} FAILED: ${(err as Error).stack ?? err}`);
      }
    }
  } finally {
    if (needed.length) await callEngines('stop', needed).catch((err: Error) => console.error(`bench: stopping engines: ${err.message}`));
  }

  console.log(formatTable([...results.values()].flatMap((r) => r.rows)));
  console.log(`\n${machine.cores} cores (${machine.cpu}), Node ${machine.node}`);
  if (values.write) {
    await writeResults(results);
    console.error(`bench: wrote ${results.size} file(s) of results to docs/benchmarks.md${failures ? '; failed ones kept their old rows' : ''}`);
  }
  return failures ? 1 : 0;
}

if (process.argv[1] && basename(process.argv[1]) === 'run.ts') {
  runBenchmarks().then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(`bench: ${err.message}`);
      process.exit(1);
    },
  );
}
