import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const webRoot = fileURLToPath(new URL('.', import.meta.url));
const nodeModules = fileURLToPath(new URL('../node_modules/', import.meta.url));

export default defineConfig({
  root: webRoot,
  base: '/',
  // The UI is served by the control server; nothing here reads public/ or env files.
  publicDir: false,
  envDir: false,
  resolve: {
    alias: [
      // y-monaco 0.1.6 imports a path that monaco-editor 0.57's exports map rewrites to a
      // file that does not exist; point it at the real file (same module instance as ours).
      {
        find: /^monaco-editor\/esm\/vs\/editor\/editor\.api\.js$/,
        replacement: `${nodeModules}monaco-editor/esm/vs/editor/editor.api.js`,
      },
    ],
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // Monaco alone is several MB; it is loaded lazily, only by the workspace view.
    chunkSizeWarningLimit: 8000,
    reportCompressedSize: false,
  },
  worker: { format: 'es' },
});
