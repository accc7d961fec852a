import { StringDecoder } from 'node:string_decoder';

/**
 * Splits a byte stream into whole lines (plus the last partial one at the end), without cutting
 * a UTF-8 character in two: a command's output as the server and the CLI print it.
 */
export function createLineSplitter(onText: (text: string) => void) {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  return {
    push(chunk: Buffer) {
      const text = partial + decoder.write(chunk);
      const cut = text.lastIndexOf('\n');
      if (cut < 0) {
        partial = text;
        return;
      }
      partial = text.slice(cut + 1);
      onText(text.slice(0, cut + 1));
    },
    end() {
      const text = partial + decoder.end();
      partial = '';
      if (text) onText(text);
    },
  };
}
