export { createFilesService } from './files-service.ts';
export type { FilesService, FilesServiceOptions, FileError, FileRead, FileWritten } from './files-service.ts';
export { parseWorkspacePath, WORKSPACE_ROOT } from './paths.ts';
export type { WorkspacePath, PathFailure } from './paths.ts';
export type { ExtractSummary } from './tar.ts';
