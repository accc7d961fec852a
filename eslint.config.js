// ESLint flat config. Besides typescript-eslint's recommended rules it enforces the layering of
// DESIGN.md ("Layout and layering"), so a wrong-way import fails `npm run lint` and CI.
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

const root = dirname(fileURLToPath(import.meta.url));

/**
 * The only files of server/common the web UI may import values (constants) from: pure ones, with
 * no imports, so the browser bundle takes nothing of the server's with them. Everything else of
 * server/common it may import only as types.
 */
const WEB_VALUE_FILES = ['server/common/protocol.ts'];

/** Folders under server/ that are not feature folders; every other folder is one. */
const NON_FEATURE = new Set(['common', 'config', 'http', 'cli']);
/** Composition roots: the only files that wire concrete drivers and agent features. */
const COMPOSITION_ROOTS = new Set(['server/main.ts', 'server/agent-main.ts']);
/** Halves of a feature folder, one per process (DESIGN.md: `{ protocol at top; agent/ ; server/ }`). */
const HALVES = new Set(['agent', 'server']);

/** `server/<folder>/...` → folder; a file directly in server/ (main.ts, serve.ts) has none. */
function folderOf(path) {
  const parts = path.split('/');
  return parts[0] === 'server' && parts.length >= 3 ? parts[1] : undefined;
}

/** `server/workspace/<driver>/...` → driver: every folder under server/workspace is a concrete driver. */
function driverOf(path) {
  const parts = path.split('/');
  return parts[0] === 'server' && parts[1] === 'workspace' && parts.length >= 4 ? parts[2] : undefined;
}

/**
 * Which process a file's code is for: `server/<feature>/agent/...` and server/agent/ run in the
 * workspace agent, `server/<feature>/server/...` in the control server; anything else is shared
 * (or its process is decided by who loads it).
 */
function halfOf(path) {
  const parts = path.split('/');
  if (parts[0] !== 'server') return undefined;
  if (path === 'server/agent-main.ts' || parts[1] === 'agent') return 'agent';
  if (path === 'server/main.ts' || path === 'server/serve.ts' || parts[1] === 'http' || parts[1] === 'workspace') return 'server';
  return parts.length >= 4 && HALVES.has(parts[2]) ? parts[2] : undefined;
}

/** The public files of a folder: its index.ts, and the index.ts of each process half. */
function isPublicFile(path, folder) {
  return path === `server/${folder}/index.ts` || [...HALVES].some((half) => path === `server/${folder}/${half}/index.ts`);
}

/**
 * Why importing `to` from `from` breaks DESIGN.md's layering (both repo-relative), or nothing.
 * Paths are resolved, not matched as text, so the depth of the importing file does not matter.
 */
function layeringProblems(from, to) {
  const problems = [];
  if (from.startsWith('web/')) {
    if (to.startsWith('server/') && !to.startsWith('server/common/')) {
      problems.push('The web UI shares only types from server/common with the server (and the constants of its pure files: WEB_VALUE_FILES).');
    }
    return problems;
  }
  if (!from.startsWith('server/') || !to.startsWith('server/')) return problems;
  const fromFolder = folderOf(from);
  const toFolder = folderOf(to);
  if (fromFolder && !toFolder) {
    problems.push('server/main.ts and server/serve.ts are the composition root and entry: nothing imports them.');
  }
  if (fromFolder === 'common' && toFolder !== 'common') {
    problems.push('server/common is shared by every part and imports nothing of ours.');
  } else if (fromFolder && toFolder && fromFolder !== toFolder) {
    if (!NON_FEATURE.has(fromFolder) && (toFolder === 'http' || toFolder === 'cli')) {
      problems.push('Feature folders never import server/http or server/cli: those import features, not the other way round.');
    } else if (!isPublicFile(to, toFolder)) {
      problems.push(`server/${toFolder} is reached only through its public file server/${toFolder}/index.ts (or the index.ts of its agent/ or server/ half).`);
    }
  }
  // A unit test may build both ends of a conversation; the rule is about what a process loads.
  const isTest = from.endsWith('.test.ts');
  const fromHalf = halfOf(from);
  const toHalf = halfOf(to);
  if (isTest) {
    // nothing more to check
  } else if (toHalf && fromHalf && toHalf !== fromHalf) {
    problems.push(`${from} runs in the ${fromHalf === 'agent' ? 'workspace agent' : 'control server'} and may not load code of the ${toHalf === 'agent' ? 'workspace agent' : 'control server'} (${to}).`);
  } else if (toHalf && !fromHalf && folderOf(from) === folderOf(to)) {
    problems.push(`The shared top of server/${folderOf(from)} (protocol, types) may not import its own ${toHalf}/ half.`);
  }
  const driver = driverOf(to);
  if (driver && !COMPOSITION_ROOTS.has(from) && driverOf(from) !== driver) {
    problems.push(`server/workspace/${driver} is a concrete driver: only server/main.ts wires it.`);
  }
  return problems;
}

/**
 * Packages that belong to one process (DESIGN.md: the server never loads node-pty, @xterm/headless
 * or chokidar; the agent never loads hono or protobufjs). Only files of that process's half may
 * import them; shared files (a feature's top, common, config, okteto, the CLI) import neither,
 * since every program may load them. Type-only imports load nothing and are allowed.
 */
const PROCESS_PACKAGES = {
  agent: ['node-pty', '@xterm/headless', '@xterm/addon-serialize', 'chokidar'],
  server: ['hono', '@hono/node-server', 'protobufjs', 'pino', 'prom-client'],
};

function packageProblem(from, spec, typeOnly) {
  if (typeOnly || !from.startsWith('server/') || from.endsWith('.test.ts')) return undefined;
  const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
  const owner = Object.keys(PROCESS_PACKAGES).find((half) => PROCESS_PACKAGES[half].includes(name));
  if (!owner || halfOf(from) === owner) return undefined;
  const process = owner === 'agent' ? 'the workspace agent' : 'the control server';
  return `${name} belongs to ${process}: only its half (${owner === 'agent' ? 'server/agent/, server/<feature>/agent/' : 'server/http/, server/workspace/, server/<feature>/server/, server/main.ts'}) may import it, and ${from} is ${halfOf(from) ? `of the other process` : 'shared (loaded by more than one program)'}.`;
}

/**
 * ESLint's own no-restricted-imports matches import strings, which cannot tell `../http` in
 * server/sync/x.ts (server/http) from the same string one folder deeper (server/sync/http), and
 * the import plugins that resolve paths need native resolver packages our registry lacks; so
 * this small rule resolves relative specifiers itself and asks layeringProblems().
 */
const layeringRule = {
  meta: {
    type: 'problem',
    docs: { description: 'Enforce the import layering of DESIGN.md ("Layout and layering").' },
    schema: [],
  },
  create(context) {
    const file = relative(root, context.filename).split(sep).join('/');
    if (isAbsolute(file) || file.startsWith('..')) return {};
    const check = (node) => {
      const spec = node?.type === 'Literal' ? node.value : node?.type === 'TSLiteralType' ? node.literal?.value : undefined;
      if (typeof spec !== 'string') return;
      if (!spec.startsWith('.')) {
        const problem = packageProblem(file, spec, node.parent?.importKind === 'type' || node.parent?.exportKind === 'type');
        if (problem) context.report({ node, message: problem });
        return;
      }
      const target = relative(root, resolve(dirname(context.filename), spec)).split(sep).join('/');
      for (const message of layeringProblems(file, target)) context.report({ node, message });
    };
    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
      // typescript-eslint 8 names the specifier `source` (the older `argument` is deprecated).
      TSImportType: (node) => check('source' in node ? node.source : node.argument),
    };
  },
};

const processGlobals = ['env', 'argv'].map((property) => ({
  object: 'process',
  property,
  message: `Only server/config reads process.${property}: take the value from the config instead.`,
}));

export default defineConfig(
  {
    // Top-level dot folders hold local scratch and tool state (.git, .ci has no JS), not project code.
    ignores: ['node_modules/**', 'dist/**', 'web/dist/**', '**/*.d.ts', 'coverage/**', '.*/**'],
  },
  tseslint.configs.recommended,
  {
    files: ['**/*.{ts,js,mjs,cjs}'],
    plugins: { wharf: { rules: { layering: layeringRule } } },
    rules: {
      'wharf/layering': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['server/**', 'web/**'],
    ignores: ['server/config/**'],
    rules: {
      'no-restricted-properties': ['error', ...processGlobals],
      'no-restricted-imports': [
        'error',
        {
          paths: ['process', 'node:process'].map((name) => ({
            name,
            importNames: ['env', 'argv'],
            message: 'Only server/config reads the environment and arguments.',
          })),
        },
      ],
    },
  },
  {
    files: ['web/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // Any path through server/, except the pure files whose constants the web may use.
              regex: `(^|/)server/(?!(${WEB_VALUE_FILES.map((file) => file.slice('server/'.length).replace(/[.]/g, '\\.')).join('|')})$)`,
              allowTypeImports: true,
              message: `The web UI imports only types from server/common (use "import type"), and constants only from ${WEB_VALUE_FILES.join(', ')}.`,
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
