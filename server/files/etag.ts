/** ETags are the sha256 of the content, so equal bytes always carry the same tag. */
export function formatEtag(sha256Hex: string): string {
  return `"${sha256Hex}"`;
}

const ENTITY_TAG = /\s*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)/y;

/**
 * Does an `If-Match` / `If-None-Match` header (a list of entity tags, or `*`) match `etag`?
 * RFC 9110: If-Match compares strongly (a weak tag never matches), If-None-Match weakly.
 * A header that does not parse matches nothing, so a garbled If-Match refuses the write.
 */
export function etagMatches(header: string, etag: string, comparison: 'strong' | 'weak'): boolean {
  const trimmed = header.trim();
  if (trimmed === '*') return true;
  const wanted = etag.replace(/^W\//, '');
  const wantedWeak = etag.startsWith('W/');
  ENTITY_TAG.lastIndex = 0;
  while (ENTITY_TAG.lastIndex < trimmed.length) {
    const match = ENTITY_TAG.exec(trimmed);
    if (!match) return false;
    const weak = match[1] !== undefined;
    if (`"${match[2]}"` === wanted && (comparison === 'weak' || (!weak && !wantedWeak))) return true;
  }
  return false;
}
