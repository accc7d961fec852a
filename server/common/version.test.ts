import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compareVersions, wharfVersion } from './version.ts';

describe('versions', () => {
  it("is package.json's version when not built into a bundle", () => {
    expect(wharfVersion()).toBe(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
  });

  it('orders versions as semver does', () => {
    const sign = (a: string, b: string) => Math.sign(compareVersions(a, b) as number);
    expect(sign('0.1.0', '0.2.0')).toBe(-1);
    expect(sign('0.10.0', '0.9.9')).toBe(1);
    expect(sign('1.2.3', '1.2.3')).toBe(0);
    expect(sign('v1.2.3', '1.2.3+build.7')).toBe(0);
    expect(sign('2.0.0', '10.0.0')).toBe(-1);
    // The order of semver.org's example: 1.0.0-alpha < alpha.1 < alpha.beta < beta < beta.2 < beta.11 < rc.1 < 1.0.0.
    const ordered = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0'];
    for (let i = 1; i < ordered.length; i++) {
      expect(sign(ordered[i - 1], ordered[i]), `${ordered[i - 1]} < ${ordered[i]}`).toBe(-1);
      expect(sign(ordered[i], ordered[i - 1])).toBe(1);
    }
  });

  it('concludes nothing from something that is not a version', () => {
    expect(compareVersions('0.1.0', 'dev')).toBeUndefined();
    expect(compareVersions('1.2', '1.2.0')).toBeUndefined();
    expect(compareVersions('', '0.1.0')).toBeUndefined();
  });
});
