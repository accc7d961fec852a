// `node --import ./record-loads.mjs`: registers record-loads-hooks.mjs with the file named by
// WHARF_RECORD_LOADS, before tsx's own hooks so that it sees what they resolve.
import { register } from 'node:module';

register('./record-loads-hooks.mjs', import.meta.url, { data: { out: process.env.WHARF_RECORD_LOADS } });
