import { describe, expect, it } from 'vitest';
import { decodeAddress, parseProcNetTcp } from './proc-net.ts';

describe('parseProcNetTcp', () => {
  it('keeps listening sockets with their address, port and inode', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1435 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0',
      '   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0000000000000000 100 0 0 10 0',
      '   2: 0100007F:1435 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 99 1 0000000000000000 20 4 30 10 -1',
      'garbage',
    ].join('\n');
    expect(parseProcNetTcp(text)).toEqual([
      { address: '127.0.0.1', port: 5173, inode: 4242 },
      { address: '0.0.0.0', port: 80, inode: 17 },
    ]);
  });

  it('reads IPv6 addresses, mapped IPv4 ones as IPv4', () => {
    expect(decodeAddress('00000000000000000000000000000000')).toBe('::');
    expect(decodeAddress('00000000000000000000000001000000')).toBe('::1');
    expect(decodeAddress('0000000000000000FFFF00000100007F')).toBe('127.0.0.1');
    expect(decodeAddress('B80D0120000000000000000001000000')).toBe('2001:db8::1');
  });
});
