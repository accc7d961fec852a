// ssh2's cipher module is internal (no types): the helper only reads whether its native binding loaded.
declare module 'ssh2/lib/protocol/crypto.js' {
  export const bindingAvailable: boolean;
}
