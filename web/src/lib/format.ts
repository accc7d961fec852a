export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  const rest = Math.round(seconds - minutes * 60);
  return rest === 60 ? `${minutes + 1} min` : `${minutes} min ${rest} s`;
}

/** Why the editor shows a file read-only, in the words of the notice above it. */
export function describeReadOnly(reason: string | undefined, size: number | undefined): string {
  const sized = size === undefined ? '' : ` (${formatBytes(size)})`;
  if (reason === 'binary') return `This is a binary file${sized}: it is shown read-only.`;
  if (reason === 'too_large') return `This file is too large to edit live${sized}: it is shown read-only.`;
  return reason ? `Read-only: ${reason}.` : 'This file is read-only.';
}
