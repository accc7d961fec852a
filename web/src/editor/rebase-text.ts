import diff from 'fast-diff';
import * as Y from 'yjs';

/** Applies the smallest edit that turns `ytext`'s content into `target`, as one transaction. */
export function applyTextDiff(ytext: Y.Text, target: string, origin?: unknown): void {
  const ops = diff(ytext.toString(), target);
  let index = 0;
  const edit = () => {
    for (const [op, text] of ops) {
      if (op === diff.EQUAL) index += text.length;
      else if (op === diff.DELETE) ytext.delete(index, text.length);
      else {
        ytext.insert(index, text);
        index += text.length;
      }
    }
  };
  if (ytext.doc) ytext.doc.transact(edit, origin);
  else edit();
}

/**
 * Three-way merge of two edits of one text, with Yjs's own rules: `base` became `ours`
 * here and `theirs` elsewhere; both edits are kept.
 */
export function mergeTexts(base: string, ours: string, theirs: string): string {
  if (ours === base || ours === theirs) return theirs;
  if (theirs === base) return ours;
  const root = new Y.Doc();
  root.clientID = 1;
  root.getText('t').insert(0, base);
  const start = Y.encodeStateAsUpdate(root);
  const fork = (clientID: number, text: string) => {
    const doc = new Y.Doc();
    doc.clientID = clientID;
    Y.applyUpdate(doc, start);
    applyTextDiff(doc.getText('t'), text);
    return doc;
  };
  const mine = fork(2, ours);
  Y.applyUpdate(mine, Y.encodeStateAsUpdate(fork(3, theirs)));
  return mine.getText('t').toString();
}

/**
 * Whether a server document continues the history this client already holds. A restarted
 * agent rebuilds the document from disk under new client ids; merging the old history into
 * it would duplicate every line, so such a document has to be adopted instead.
 */
export function continuesHistory(local: Map<number, number>, server: Map<number, number>, ownClientId: number): boolean {
  let shared = false;
  for (const [client, clock] of local) {
    const serverClock = server.get(client) ?? 0;
    if (serverClock > 0) shared = true;
    // Everything but our own (possibly offline) edits came from the server, so it must still have it.
    if (client !== ownClientId && serverClock < clock) return false;
  }
  return shared || local.size === 0 || server.size === 0;
}
