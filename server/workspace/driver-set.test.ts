import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WharfError } from '../common/index.ts';
import type { CreateWorkspaceInput, WorkspaceDriver, WorkspaceRecord } from './driver.ts';
import { createDriverSet } from './driver-set.ts';

/** A driver that keeps records in memory: enough to see which one the set sends each call to. */
function memoryDriver(kind: string): WorkspaceDriver & { calls: string[] } {
  const records = new Map<string, WorkspaceRecord>();
  const calls: string[] = [];
  const need = (id: string) => {
    const r = records.get(id);
    if (!r) throw new WharfError('not_found', `workspace "${id}" does not exist`);
    return r;
  };
  return {
    kind,
    calls,
    async init() { calls.push('init'); },
    async create(input: CreateWorkspaceInput) {
      calls.push(`create ${input.id}`);
      const record: WorkspaceRecord = { id: input.id, name: input.name, driver: kind, createdAt: new Date(Date.now() + records.size).toISOString(), desired: 'running', status: 'running', hostPublicKey: input.hostPublicKey };
      records.set(input.id, record);
      return record;
    },
    async list() { return [...records.values()]; },
    async get(id) { return records.get(id); },
    async start(id) { calls.push(`start ${id}`); return need(id); },
    async stop(id) { calls.push(`stop ${id}`); return { ...need(id), desired: 'stopped', status: 'stopped' }; },
    async remove(id) { calls.push(`remove ${id}`); need(id); records.delete(id); },
    async connect(id) { calls.push(`connect ${id}`); need(id); return new PassThrough(); },
    async shutdown() { calls.push('shutdown'); },
  };
}

const input = (id: string, driver?: string): CreateWorkspaceInput => ({ id, name: id, hostPrivateKey: 'k', hostPublicKey: 'p', authorizedKeys: 'a', driver });

describe('driver set', () => {
  it('creates on the default (first) driver or the one asked for, and sends later calls to the holder', async () => {
    const processDriver = memoryDriver('process');
    const docker = memoryDriver('docker');
    const set = createDriverSet([processDriver, docker]);
    expect(set.kinds).toEqual(['process', 'docker']);
    await set.init();
    expect((await set.create(input('a'))).driver).toBe('process');
    expect((await set.create(input('b', 'docker'))).driver).toBe('docker');
    await set.stop('b');
    await set.connect('a');
    await set.remove('b');
    expect(docker.calls).toEqual(['init', 'create b', 'stop b', 'remove b']);
    expect(processDriver.calls).toEqual(['init', 'create a', 'connect a']);
    expect((await set.list()).map((w) => `${w.id}:${w.driver}`)).toEqual(['a:process']);
  });

  it('keeps ids unique across drivers, refuses a driver it does not have, and says not_found for nobody\'s id', async () => {
    const set = createDriverSet([memoryDriver('process'), memoryDriver('docker')]);
    await set.create(input('a', 'docker'));
    await expect(set.create(input('a', 'process'))).rejects.toMatchObject({ code: 'conflict' });
    await expect(set.create(input('c', 'kubernetes'))).rejects.toMatchObject({ code: 'bad_request', message: expect.stringMatching(/process, docker/) });
    await expect(set.start('ghost')).rejects.toMatchObject({ code: 'not_found' });
    await expect(set.connect('ghost')).rejects.toMatchObject({ code: 'not_found' });
    expect(await set.get('ghost')).toBeUndefined();
  });

  it('refuses to be made of the same driver twice', () => {
    expect(() => createDriverSet([memoryDriver('process'), memoryDriver('process')])).toThrow(/configured twice/);
  });
});
