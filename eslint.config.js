// ESLint flat config. Besides typescript-eslint's recommended rules it enforces the layering of
// DESIGN.md ("Layout and layering"), so a wrong-way import fails `npm run lint` and CI.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'eslint/config';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const root = dirname(fileURLToPath(import.meta.url));

/** Folders under server/ that are not feature folders; every other folder is one. */
const NON_FEATURE = new Set(['common', 'config', 'http', 'cli']);
const KNOWN_FOLDERS = ['agent', 'cli', 'common', 'config', 'deploy', 'files', 'http', 'hybrid', 'sync', 'terminal', 'workspace'];
const KNOWN_DRIVERS = ['docker', 'kubernetes', 'process'];

// The folders named in DESIGN.md plus whatever is on disk, so a new folder is covered the day it appears.
function listFolders(path, known) {
  let found = [];
  try {
    found = readdirSync(join(root, path), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch {
    // A missing folder has nothing to add to the known names.
  }
  return [...new Set([...known, ...found])].sort();
}

const serverFolders = listFolders('server', KNOWN_FOLDERS);
const features = serverFolders.filter((name) => !NON_FEATURE.has(name));
// A concrete driver is any folder under server/workspace (process/, docker/, kubernetes/...).
const drivers = listFolders('server/workspace', KNOWN_DRIVERS);

const zones = [
  {
    target: './server/common',
    from: './server',
    except: ['./common'],
    message: 'server/common is shared by every part and imports nothing of ours.',
  },
];

for (const folder of serverFolders) {
  for (const other of serverFolders) {
    if (other === folder) continue;
    zones.push({
      target: `./server/${folder}`,
      from: `./server/${other}`,
      except: ['./index.ts'],
      message: `server/${other} is reached only through its public file server/${other}/index.ts.`,
    });
  }
  zones.push({
    target: `./server/${folder}`,
    from: ['./server/*.ts'],
    message: 'server/main.ts and server/serve.ts are the composition root and entry: nothing imports them.',
  });
}

for (const feature of features) {
  zones.push({
    target: `./server/${feature}`,
    from: ['./server/http', './server/cli'],
    message: 'Feature folders never import server/http or server/cli: those import features, not the other way round.',
  });
}

// Only the composition roots wire concrete drivers: server/main.ts for the server and
// server/agent/main.ts for the agent's own features.
for (const driver of drivers) {
  zones.push({
    target: [
      './server/!(main).ts',
      ...serverFolders.filter((name) => name !== 'workspace' && name !== 'agent').map((name) => `./server/${name}/**`),
      './server/agent/!(main).ts',
      './server/agent/*/**',
      './server/workspace/*.ts',
      `./server/workspace/!(${driver})/**`,
    ],
    from: [`./server/workspace/${driver}/**`],
    message: `server/workspace/${driver} is a concrete driver: only server/main.ts wires it.`,
  });
}

zones.push({
  target: './web',
  from: './server',
  except: ['./common'],
  message: 'The web UI shares only types from server/common with the server.',
});

const processGlobals = ['env', 'argv'].map((property) => ({
  object: 'process',
  property,
  message: `Only server/config reads process.${property}: take the value from the config instead.`,
}));

export default defineConfig(
  {
    ignores: ['node_modules/**', 'dist/**', 'web/dist/**', '**/*.d.ts', 'coverage/**', '.wharf-data/**'],
  },
  tseslint.configs.recommended,
  {
    files: ['**/*.{ts,js,mjs,cjs}'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] })],
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { basePath: root, zones }],
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
              regex: '(^|/)server/',
              allowTypeImports: true,
              message: 'The web UI imports only types from server/common (use "import type").',
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
