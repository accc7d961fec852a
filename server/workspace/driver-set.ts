import { WharfError } from '../common/index.ts';
import type { CreateWorkspaceInput, WorkspaceDriver, WorkspaceRecord } from './driver.ts';

/**
 * Several drivers behind one: a server configured with `--driver process,docker` creates each
 * workspace on the driver its request names (the first one by default) and finds every workspace
 * on whichever driver holds it. Ids are unique across all of them, since URLs name a workspace
 * by id alone. Each record says its driver, so nothing above this needs to know there are several.
 */
export type DriverSet = WorkspaceDriver & {
  /** The kinds offered, the default first. */
  readonly kinds: readonly string[];
};

export function createDriverSet(drivers: readonly WorkspaceDriver[]): DriverSet {
  if (drivers.length === 0) throw new Error('a driver set needs at least one driver');
  const kinds = drivers.map((d) => d.kind);
  const duplicate = kinds.find((k, i) => kinds.indexOf(k) !== i);
  if (duplicate) throw new Error(`driver "${duplicate}" is configured twice`);

  /** The driver holding `id`, asked all at once (each answers from its own store: files, labels). */
  async function ownerOf(id: string): Promise<{ driver: WorkspaceDriver; record: WorkspaceRecord } | undefined> {
    const found = await Promise.all(drivers.map(async (driver) => ({ driver, record: await driver.get(id) })));
    const held = found.filter((f): f is { driver: WorkspaceDriver; record: WorkspaceRecord } => f.record !== undefined);
    return held[0];
  }

  async function requireOwner(id: string): Promise<WorkspaceDriver> {
    const owner = await ownerOf(id);
    if (!owner) throw new WharfError('not_found', `workspace "${id}" does not exist`);
    return owner.driver;
  }

  return {
    kind: kinds[0],
    kinds,

    async init() {
      await Promise.all(drivers.map((d) => d.init()));
    },

    async create(input: CreateWorkspaceInput) {
      const kind = input.driver ?? kinds[0];
      const driver = drivers.find((d) => d.kind === kind);
      if (!driver) throw new WharfError('bad_request', `driver "${kind}" is not offered by this server (it has ${kinds.join(', ')})`);
      if (await ownerOf(input.id)) throw new WharfError('conflict', `workspace "${input.id}" already exists`);
      return driver.create(input);
    },

    async list() {
      const all = (await Promise.all(drivers.map((d) => d.list()))).flat();
      return all.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    },

    async get(id) {
      return (await ownerOf(id))?.record;
    },

    async start(id) {
      return (await requireOwner(id)).start(id);
    },

    async stop(id) {
      return (await requireOwner(id)).stop(id);
    },

    async remove(id) {
      return (await requireOwner(id)).remove(id);
    },

    async connect(id) {
      return (await requireOwner(id)).connect(id);
    },

    async workloadEnvironment(id, service, selector) {
      const owner = await requireOwner(id);
      return owner.workloadEnvironment ? owner.workloadEnvironment(id, service, selector) : undefined;
    },

    async shutdown(options) {
      await Promise.all(drivers.map((d) => d.shutdown(options)));
    },
  };
}
