/** One listening socket of /proc/net/tcp or /proc/net/tcp6. */
export type ListeningSocket = { address: string; port: number; inode: number };

/** TCP_LISTEN in the kernel's `st` column (include/net/tcp_states.h). */
const LISTEN_STATE = '0A';

/** The kernel prints each 32-bit word of an address in host byte order (little-endian here). */
function decodeWord(hex: string): number[] {
  const bytes = [];
  for (let i = 6; i >= 0; i -= 2) bytes.push(parseInt(hex.slice(i, i + 2), 16));
  return bytes;
}

export function decodeAddress(hex: string): string {
  if (hex.length === 8) return decodeWord(hex).join('.');
  const bytes = [0, 8, 16, 24].flatMap((at) => decodeWord(hex.slice(at, at + 8)));
  // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 socket it stands for.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.');
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return compressIpv6(groups);
}

/** RFC 5952 form: the longest run of two or more zero groups becomes `::`. */
function compressIpv6(groups: string[]): string {
  let best = { at: -1, length: 1 };
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.length).join(':')}`;
}

/** The listening sockets of one /proc/net/tcp{,6} file; lines it cannot read are skipped. */
export function parseProcNetTcp(text: string): ListeningSocket[] {
  const sockets: ListeningSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || fields[3] !== LISTEN_STATE) continue;
    const [addressHex, portHex] = fields[1].split(':');
    if (!addressHex || !portHex || (addressHex.length !== 8 && addressHex.length !== 32)) continue;
    const inode = Number(fields[9]);
    const port = parseInt(portHex, 16);
    if (!Number.isInteger(inode) || !(port > 0)) continue;
    sockets.push({ address: decodeAddress(addressHex), port, inode });
  }
  return sockets;
}
