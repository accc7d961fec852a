export { createProcessDriver } from './process-driver.ts';
export type { ProcessDriverOptions } from './process-driver.ts';
export { chooseRunDir } from './run-dir.ts';
