import { describe, expect, it } from 'vitest';
import { grantOfRules, matchForwardPattern, parseForwardRule, parseHybridRules, parseReverseRule, checkForwardPattern } from './rules.ts';

describe('hybrid rules', () => {
  it('reads the three forms of a forward rule', () => {
    expect(parseForwardRule('8080:80')).toEqual({ ok: true, value: { localPort: 8080, host: 'localhost', remotePort: 80 } });
    expect(parseForwardRule('5432:db:5432')).toEqual({ ok: true, value: { localPort: 5432, host: 'db', remotePort: 5432 } });
    expect(parseForwardRule({ localPort: 6379, remotePort: 6379, name: 'redis' })).toEqual({ ok: true, value: { localPort: 6379, host: 'redis', remotePort: 6379 } });
  });

  it('says what is wrong with a forward rule, and what was expected', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['8080', /expected "local:remote"/],
      ['8080:0', /remote port 0 is out of range/],
      ['99999:80', /local port 99999 is out of range/],
      ['80:My_DB:5432', /"My_DB" is not a valid DNS label/],
      [{ localPort: 1, remotePort: 2, host: 'x' }, /unknown key "host"/],
      [['1:2'], /expected/],
    ];
    for (const [value, message] of cases) {
      const rule = parseForwardRule(value);
      expect(rule.ok, JSON.stringify(value)).toBe(false);
      if (!rule.ok) expect(rule.error).toMatch(message);
    }
  });

  it('reads reverse rules workspace port first, and explains a rule given the wrong way round', () => {
    expect(parseReverseRule('9000:3000')).toEqual({ ok: true, value: { remotePort: 9000, localPort: 3000 } });
    const threeParts = parseReverseRule('9000:api:3000');
    expect(threeParts.ok).toBe(false);
    if (!threeParts.ok) expect(threeParts.error).toMatch(/names no service.*"remote:local"/);
    const notString = parseReverseRule(9000);
    expect(notString.ok).toBe(false);
  });

  it('reports every mistake of a rule set, with its list and entry, including a local port used twice', () => {
    const result = parseHybridRules({ forward: ['8080:80', '8080:81', 'x'], reverse: ['9000:1', '9000:2', '0:1'] });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.map((e) => [e.field, e.index])).toEqual([['forward', 1], ['forward', 2], ['reverse', 1], ['reverse', 2]]);
    expect(result.error[0].message).toMatch(/local port 8080 is already used by forward rule 1/);
    expect(parseHybridRules({ forward: 'nope' }).ok).toBe(false);
  });

  it('grants exactly the targets and ports the rules name', () => {
    const rules = parseHybridRules({ forward: ['8080:80', '5432:db:5432', '5433:db:5432'], reverse: ['9000:3000'] });
    expect(rules.ok).toBe(true);
    if (rules.ok) expect(grantOfRules(rules.value)).toEqual({ forward: ['localhost:80', 'db:5432'], reverse: [9000] });
  });

  it('matches forward patterns by host and port, loopback spellings alike', () => {
    expect(matchForwardPattern('*', 'anything', 1)).toBe(true);
    expect(matchForwardPattern('localhost:80', '127.0.0.1', 80)).toBe(true);
    expect(matchForwardPattern('localhost:80', '127.0.0.1', 81)).toBe(false);
    expect(matchForwardPattern('db:5432', 'DB', 5432)).toBe(true);
    expect(matchForwardPattern('db:5432', 'db.evil', 5432)).toBe(false);
    expect(matchForwardPattern('db:*', 'db', 1)).toBe(true);
    expect(matchForwardPattern('nonsense', 'nonsense', 1)).toBe(false);
    expect(checkForwardPattern('db:5432')).toBeUndefined();
    expect(checkForwardPattern('*')).toMatch(/host:port/);
  });
});
