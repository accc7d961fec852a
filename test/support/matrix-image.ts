import { requireEngine } from './images.ts';
import { ensureMatrixWorkspaceImage } from './workspace-images.ts';

/**
 * vitest globalSetup of the `integration-docker` project: the workspace image of the driver
 * matrix (workspace-images.ts), imported into the test engine unless it is there already (a few
 * seconds the first time, under one when present). Its servers use it through
 * WHARF_TEST_WORKSPACE_IMAGE, set here unless the run names another image.
 */
export default async function matrixImage(): Promise<void> {
  if (process.env.WHARF_TEST_WORKSPACE_IMAGE?.trim()) return;
  const started = Date.now();
  const image = await ensureMatrixWorkspaceImage(requireEngine('docker'));
  process.env.WHARF_TEST_WORKSPACE_IMAGE = image;
  process.stderr.write(`[wharf] matrix workspace image ${image} (${Date.now() - started} ms)\n`);
}
