import diff from 'fast-diff';
import type * as Y from 'yjs';

export type TextEdit = { index: number; delete: number; insert: string };

/**
 * Above this many UTF-16 units left after trimming the common prefix and suffix on either side,
 * the middle is replaced wholesale: a full diff of two unrelated megabyte files (a `git checkout`
 * of another branch) costs seconds, and a wholesale replacement is what such a change is anyway.
 */
export const MAX_DIFF_SPAN = 200_000;

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

function commonPrefixLength(a: string, b: string): number {
  const max = Math.min(a.length, b.length);
  let i = 0;
  while (i < max && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  // Never split a surrogate pair: an edit must not leave half an emoji behind.
  if (i > 0 && i < max && isHighSurrogate(a.charCodeAt(i - 1))) i--;
  return i;
}

function commonSuffixLength(a: string, b: string, prefix: number): number {
  const max = Math.min(a.length, b.length) - prefix;
  let i = 0;
  while (i < max && a.charCodeAt(a.length - 1 - i) === b.charCodeAt(b.length - 1 - i)) i++;
  if (i > 0 && i < max && isLowSurrogate(a.charCodeAt(a.length - i))) i--;
  return i;
}

/**
 * The edits that turn `before` into `after`, in ascending order of `index` where each index is a
 * position in the text as already edited by the previous ones (so they apply one after another).
 * Small: unchanged runs are kept, so concurrent typing elsewhere in a CRDT survives.
 */
export function computeTextEdits(before: string, after: string): TextEdit[] {
  if (before === after) return [];
  const prefix = commonPrefixLength(before, after);
  const suffix = commonSuffixLength(before, after, prefix);
  const oldMiddle = before.slice(prefix, before.length - suffix);
  const newMiddle = after.slice(prefix, after.length - suffix);
  if (oldMiddle.length > MAX_DIFF_SPAN || newMiddle.length > MAX_DIFF_SPAN || oldMiddle.length === 0 || newMiddle.length === 0) {
    return [{ index: prefix, delete: oldMiddle.length, insert: newMiddle }];
  }
  const edits: TextEdit[] = [];
  let index = prefix;
  let current: TextEdit | undefined;
  // `cleanup: true` gives semantic (word-level) chunks instead of character soup.
  for (const [op, text] of diff(oldMiddle, newMiddle, undefined, true)) {
    if (op === diff.EQUAL) {
      if (current) edits.push(current);
      current = undefined;
      index += text.length;
    } else if (op === diff.DELETE) {
      current ??= { index, delete: 0, insert: '' };
      current.delete += text.length;
    } else {
      current ??= { index, delete: 0, insert: '' };
      current.insert += text;
    }
    if (op === diff.INSERT) index += text.length;
  }
  if (current) edits.push(current);
  return edits;
}

/** Applies the minimal edits from `before` (the text's current content) to `after`, in one transaction. */
export function applyTextChange(text: Y.Text, before: string, after: string, origin: unknown = null): number {
  const edits = computeTextEdits(before, after);
  if (edits.length === 0) return 0;
  const apply = () => {
    for (const edit of edits) {
      if (edit.delete > 0) text.delete(edit.index, edit.delete);
      if (edit.insert) text.insert(edit.index, edit.insert);
    }
  };
  if (text.doc) text.doc.transact(apply, origin);
  else apply();
  return edits.length;
}
