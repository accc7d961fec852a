#!/usr/bin/env node
// The `wharf` helper in a checkout: runs the TypeScript entry through tsx. Both are resolved
// relative to this file, so it works from any working directory and through npm's bin link.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../server/cli/main.ts', import.meta.url).href);
