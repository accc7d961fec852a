import { fail, ok, type Result } from '../../common/index.ts';
import type { AttachPrincipal } from '../protocol.ts';

export type ClientLimits = {
  /** Clients attached through one share link (a link names one terminal). */
  perLink: number;
  /** Clients of one terminal; share-link clients are refused beyond it. */
  perTerminal: number;
  /** Clients the admin has attached across this workspace's terminals. */
  perAdmin: number;
};

/**
 * Counts the websocket clients attached to this workspace's terminals, by terminal and by who
 * they are. The count lives in the agent because only the agent sees every client: control
 * servers are stateless and may run as several replicas, each with its own hub per terminal, and
 * every hub announces each of its clients here (`join`/`leave` on its attach channel) before
 * serving it. A channel that closes releases all of its clients, so a replica that dies leaves
 * nothing counted behind.
 *
 * The admin is counted in a terminal's total but not refused by it: share-link holders must not
 * be able to lock the owner out of the owner's own terminal (the owner's own limit still stops a
 * runaway script, and revoking a link closes its clients at once).
 */
export function createClientLimits(limits: ClientLimits) {
  const byTerminal = new Map<string, number>();
  const byPrincipal = new Map<string, number>();

  const bump = (map: Map<string, number>, key: string, by: number) => {
    const next = (map.get(key) ?? 0) + by;
    if (next <= 0) map.delete(key);
    else map.set(key, next);
  };

  return {
    /** Admits one client of `terminal`, or says which limit it is over; call the release once it goes. */
    admit(terminal: string, principal: AttachPrincipal): Result<() => void, string> {
      const key = principal.kind === 'admin' ? 'admin' : `share:${principal.id}`;
      const mine = byPrincipal.get(key) ?? 0;
      if (principal.kind === 'admin') {
        if (mine >= limits.perAdmin) return fail(`${limits.perAdmin} terminal clients are already attached to this workspace as the admin; close some first`);
      } else {
        if (mine >= limits.perLink) return fail(`this share link already has ${limits.perLink} clients attached; close one of them first`);
        if ((byTerminal.get(terminal) ?? 0) >= limits.perTerminal) return fail(`this terminal already has ${limits.perTerminal} clients attached; try again later`);
      }
      bump(byPrincipal, key, 1);
      bump(byTerminal, terminal, 1);
      let released = false;
      return ok(() => {
        if (released) return;
        released = true;
        bump(byPrincipal, key, -1);
        bump(byTerminal, terminal, -1);
      });
    },

    /** Clients counted for a terminal (for tests and diagnostics). */
    countOf(terminal: string): number {
      return byTerminal.get(terminal) ?? 0;
    },
  };
}

export type ClientLimiter = ReturnType<typeof createClientLimits>;
