import { describe, expect, it } from 'vitest';
import { applyVariablePatch, resolveDeveloperEnvironment, resolveEnvironment, toProcessEnv, validateVariableMap, workspaceLayers } from './environment.ts';

/**
 * Every layer, highest first, and the variable whose highest definition is in it. Each layer
 * defines its own variable and every variable of the layers above it, so each variable is
 * defined in its layer and every layer below, and must be won by its own layer.
 */
const TABLE: Array<{ layer: string; variable: string }> = [
  { layer: 'local', variable: 'PATH' },
  { layer: 'manifest', variable: 'FROM_MANIFEST' },
  { layer: 'dev-container', variable: 'FROM_CONTAINER' },
  { layer: 'spec', variable: 'FROM_SPEC' },
  { layer: 'config-set:zz', variable: 'FROM_CONFIG_ZZ' },
  { layer: 'config-set:aa', variable: 'FROM_CONFIG_AA' },
  { layer: 'secret-set:zz', variable: 'FROM_SECRET_ZZ' },
  { layer: 'secret-set:aa', variable: 'FROM_SECRET_AA' },
  { layer: 'image', variable: 'FROM_IMAGE' },
];

/** What layer `layer` defines: its own variable and those of every layer above it, valued `<layer>`. */
function definedBy(layer: string): Record<string, string> {
  const at = TABLE.findIndex((row) => row.layer === layer);
  return Object.fromEntries(TABLE.slice(0, at + 1).map((row) => [row.variable, `value from ${layer}`]));
}

describe('resolveEnvironment', () => {
  // The sets are given out of name order: their order comes from their names, not from the list.
  const workspace = resolveEnvironment(
    workspaceLayers({
      devContainer: definedBy('dev-container'),
      spec: definedBy('spec'),
      configSets: [
        { name: 'aa', variables: definedBy('config-set:aa') },
        { name: 'zz', variables: definedBy('config-set:zz') },
      ],
      secretSets: [
        { name: 'aa', variables: definedBy('secret-set:aa') },
        { name: 'zz', variables: definedBy('secret-set:zz') },
      ],
      image: definedBy('image'),
    }),
  );
  const full = resolveDeveloperEnvironment({ local: { ...definedBy('local'), HOME: '/home/dev', SHELL: '/bin/zsh' }, manifest: definedBy('manifest'), workspace });

  it.each(TABLE)('$variable is won by $layer, the highest layer that defines it', ({ layer, variable }) => {
    const found = full.find((v) => v.name === variable);
    expect(found).toMatchObject({ value: `value from ${layer}`, source: layer });
  });

  it('marks a name a secret set defines as secret, whichever layer wins it', () => {
    const secret = full.filter((v) => v.secret).map((v) => v.name);
    // Every name defined in a secret set (that set's own and those of every layer above it).
    expect(secret.sort()).toEqual(TABLE.slice(0, TABLE.findIndex((r) => r.layer === 'secret-set:aa') + 1).map((r) => r.variable).sort());
    expect(full.find((v) => v.name === 'FROM_IMAGE')?.secret).toBe(false);
  });

  it('takes only PATH, HOME, TERM and USER from the developer machine, sorted by name', () => {
    expect(full.find((v) => v.name === 'HOME')).toMatchObject({ value: '/home/dev', source: 'local' });
    expect(full.find((v) => v.name === 'SHELL')).toBeUndefined();
    expect(full.map((v) => v.name)).toEqual([...full.map((v) => v.name)].sort());
  });

  it('lists a secret whose value the server kept back at its own layer, and leaves it out of the process environment', () => {
    const masked = workspace.map((v) => (v.secret ? { ...v, value: null } : v));
    const resolved = resolveDeveloperEnvironment({ local: {}, manifest: { FROM_SECRET_AA: 'from the manifest' }, workspace: masked });
    expect(resolved.find((v) => v.name === 'FROM_SECRET_ZZ')).toEqual({ name: 'FROM_SECRET_ZZ', value: null, source: 'secret-set:zz', secret: true });
    // Won by the manifest, but the workspace says a secret set defines it: still masked.
    expect(resolved.find((v) => v.name === 'FROM_SECRET_AA')).toEqual({ name: 'FROM_SECRET_AA', value: 'from the manifest', source: 'manifest', secret: true });
    const env = toProcessEnv(resolved);
    expect(env.FROM_SECRET_ZZ).toBeUndefined();
    expect(env.FROM_IMAGE).toBe('value from image');
  });
});

describe('variable maps', () => {
  it('accepts names and string values, a null only in a patch, and refuses the rest with the reason', () => {
    expect(validateVariableMap({ A: '1', _B: '' })).toEqual({ ok: true, value: { A: '1', _B: '' } });
    expect(validateVariableMap({ A: null }, { allowNull: true })).toEqual({ ok: true, value: { A: null } });
    expect(validateVariableMap({ A: null })).toMatchObject({ ok: false, error: expect.stringMatching(/value of A must be a string/) });
    expect(validateVariableMap({ '1A': 'x' })).toMatchObject({ ok: false, error: expect.stringMatching(/not a variable name/) });
    expect(validateVariableMap({ A: 'a\0b' })).toMatchObject({ ok: false, error: expect.stringMatching(/NUL/) });
    expect(validateVariableMap(['A=1'])).toMatchObject({ ok: false });
    expect(applyVariablePatch({ A: '1', B: '2' }, { A: null, C: '3' })).toEqual({ B: '2', C: '3' });
  });
});
