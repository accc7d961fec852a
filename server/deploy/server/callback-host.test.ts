import { describe, expect, it } from 'vitest';
import { pinCallbackHost } from './callback-host.ts';

type Lookup = Parameters<typeof pinCallbackHost>[1];
const answers = (table: Record<string, Array<{ address: string; family: number }>>) =>
  (async (host: string) => {
    const found = table[host];
    if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return found;
  }) as unknown as Lookup;

describe('pinCallbackHost', () => {
  it("pins a name to the server's own answer, preferring IPv4", async () => {
    const resolve = answers({ wharf: [{ address: 'fd00::5', family: 6 }, { address: '172.20.0.3', family: 4 }] });
    expect(await pinCallbackHost('http://wharf:8080', resolve)).toEqual(['wharf:172.20.0.3']);
  });

  it('pins nothing for address literals, unresolvable names or loopback answers', async () => {
    const resolve = answers({ localhost: [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }], myhost: [{ address: '127.0.1.1', family: 4 }] });
    expect(await pinCallbackHost('http://127.0.0.1:8080', resolve)).toEqual([]);
    expect(await pinCallbackHost('http://[::1]:8080', resolve)).toEqual([]);
    expect(await pinCallbackHost('http://localhost:8080', resolve)).toEqual([]);
    expect(await pinCallbackHost('http://myhost:8080', resolve)).toEqual([]);
    expect(await pinCallbackHost('http://nowhere.invalid:8080', resolve)).toEqual([]);
    expect(await pinCallbackHost('not a url', resolve)).toEqual([]);
  });
});
