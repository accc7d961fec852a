import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, type KeyPair, type WorkspaceDriver } from '../server/workspace/index.ts';

/** What a driver's test file hands the contract. */
export type DriverHarness = {
  /** A new driver instance on `dataDir`; a second one on the same dir plays a restarted server. */
  createDriver(dataDir: string): WorkspaceDriver;
  /** What of workspace `id` is still on the machine (files, processes, sockets, containers...), one line each. */
  findLeftovers(dataDir: string, id: string): Promise<string[]>;
};

/** Generous: the suite must pass on a machine busy with other work. */
const DEADLINE_MS = 60_000;

/** Polls `probe` until it gives a value (not undefined/false) or the deadline passes; never a fixed sleep. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}

/**
 * Runs `command` through the agent's SSH server on a fresh byte stream from the driver,
 * authenticating with the server's key and checking the workspace's host key. Resolves with
 * what it printed.
 */
export async function runInWorkspace(driver: WorkspaceDriver, id: string, serverKey: KeyPair, command: string): Promise<string> {
  const record = await driver.get(id);
  if (!record) throw new Error(`workspace ${id} is gone`);
  const expected = (() => {
    const parsed = ssh2.utils.parseKey(record.hostPublicKey);
    if (parsed instanceof Error) throw parsed;
    return (Array.isArray(parsed) ? parsed[0] : parsed).getPublicSSH();
  })();
  const stream: Duplex = await driver.connect(id);
  const client = new ssh2.Client();
  try {
    return await new Promise<string>((resolve, reject) => {
      let out = '';
      client.on('error', reject);
      client.once('close', () => resolve(out));
      client.once('ready', () => {
        client.exec(command, (err, channel) => {
          if (err) return reject(err);
          channel.on('data', (d: Buffer) => (out += d));
          channel.on('close', () => resolve(out));
          channel.end();
        });
      });
      client.connect({ sock: stream, username: 'wharf', privateKey: serverKey.privateKey, hostVerifier: (key: Buffer) => key.equals(expected), readyTimeout: DEADLINE_MS });
    });
  } finally {
    client.end();
    stream.destroy();
  }
}

/**
 * The behaviour every workspace driver owes the server: lifecycle and a byte stream to the
 * agent's SSH server, nothing more. Each driver's test file calls this with its harness.
 */
export function runDriverContract(name: string, harness: DriverHarness): void {
  describe(`workspace driver contract: ${name}`, () => {
    let dataDir: string;
    let driver: WorkspaceDriver;
    const serverKey = generateKeyPair('wharf-contract-server');
    const id = 'contract';

    const status = async () => (await driver.get(id))?.status;
    /** The agent's pid as the workspace sees it: the parent of the shell that runs a command. */
    const agentPid = async () => {
      const text = (await runInWorkspace(driver, id, serverKey, 'echo $PPID')).trim();
      return /^\d+$/.test(text) ? Number(text) : undefined;
    };

    /** Kills the agent from inside the workspace; the connection may break before the command's answer does. */
    const killAgent = () => runInWorkspace(driver, id, serverKey, 'kill -KILL $PPID').catch(() => '');

    beforeAll(async () => {
      dataDir = await mkdtemp(join(tmpdir(), `wharf-contract-${name}-`));
      driver = harness.createDriver(dataDir);
      await driver.init();
    });

    afterAll(async () => {
      await driver?.shutdown({ stopAgents: true });
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it('creates a workspace that runs, is listed, and refuses a second of the same id', async () => {
      const host = generateKeyPair(`wharf-workspace-${id}`);
      const input = { id, name: id, hostPrivateKey: host.privateKey, hostPublicKey: host.publicKey, authorizedKeys: `${serverKey.publicKey.trim()}\n` };
      const record = await driver.create(input);
      expect(record).toMatchObject({ id, name: id, driver: driver.kind, desired: 'running', hostPublicKey: host.publicKey });
      expect(await waitFor('the new workspace to run', async () => (await status()) === 'running')).toBe(true);
      expect((await driver.list()).map((w) => w.id)).toEqual([id]);
      await expect(driver.create(input)).rejects.toMatchObject({ code: 'conflict' });
    });

    it('connects: a byte stream to an SSH server that answers as the workspace', async () => {
      expect(await runInWorkspace(driver, id, serverKey, 'echo hello')).toBe('hello\n');
      await expect(driver.connect('ghost')).rejects.toMatchObject({ code: 'not_found' });
    });

    it('stops (no stream while stopped) and starts again', async () => {
      const stopped = await driver.stop(id);
      expect(stopped.desired).toBe('stopped');
      expect(await waitFor('the workspace to stop', async () => (await status()) === 'stopped')).toBe(true);
      await expect(driver.connect(id)).rejects.toMatchObject({ code: 'conflict' });
      const started = await driver.start(id);
      expect(started.desired).toBe('running');
      expect(await waitFor('an answer after the start', () => runInWorkspace(driver, id, serverKey, 'echo back'))).toBe('back\n');
      expect(await status()).toBe('running');
    });

    it('brings a crashed agent back by itself', async () => {
      const before = await waitFor('the agent pid', agentPid);
      await killAgent();
      const after = await waitFor('a new agent', async () => {
        const pid = await agentPid();
        return pid !== undefined && pid !== before ? pid : undefined;
      });
      expect(after).not.toBe(before);
      expect(await waitFor('the workspace to be running', async () => (await status()) === 'running')).toBe(true);
    });

    it('is re-adopted with its live agent by a new driver instance on the same data (a server restart)', async () => {
      const before = await waitFor('the agent pid', agentPid);
      await driver.shutdown({ stopAgents: false });
      driver = harness.createDriver(dataDir);
      await driver.init();
      expect((await driver.list()).map((w) => w.id)).toEqual([id]);
      expect(await waitFor('the workspace to be running', async () => (await status()) === 'running')).toBe(true);
      expect(await waitFor('the adopted agent to answer', agentPid)).toBe(before);
      // Still supervised by the new instance: a crash is repaired as before.
      await killAgent();
      const after = await waitFor('a new agent after the adoption', async () => {
        const pid = await agentPid();
        return pid !== undefined && pid !== before ? pid : undefined;
      });
      expect(after).not.toBe(before);
    });

    it('deletes a workspace leaving nothing behind: no files, no processes, no sockets', async () => {
      expect(await harness.findLeftovers(dataDir, id)).not.toEqual([]);
      await driver.remove(id);
      expect(await driver.get(id)).toBeUndefined();
      expect(await driver.list()).toEqual([]);
      await expect(driver.connect(id)).rejects.toMatchObject({ code: 'not_found' });
      expect(await waitFor('nothing of the workspace to be left', async () => ((await harness.findLeftovers(dataDir, id)).length === 0 ? true : undefined)).catch(async (err: Error) => {
        throw new Error(`${err.message}; left: ${(await harness.findLeftovers(dataDir, id)).join(', ')}`);
      })).toBe(true);
      await expect(driver.remove(id)).rejects.toMatchObject({ code: 'not_found' });
    });
  });
}
