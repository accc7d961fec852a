import type { ServiceProcess } from '../common/index.ts';

/**
 * The conversation between hybrid mode's two halves about a service's environment. The control
 * server never reads a workspace's processes itself: it asks the agent, over the `wharf-hybrid`
 * SSH subsystem (the server's own key only), for the environment of the process serving a
 * service and for the base environment the agent gives workspace processes. One JSON request
 * frame per channel (server/common's frame.ts), answered by one JSON frame:
 *
 *   {op: "service-env", service}  → HybridServiceEnvReply
 */
export const HYBRID_SUBSYSTEM = 'wharf-hybrid';

export type HybridAgentRequest = { op: 'service-env'; service: string };

/**
 * `process`: the newest workspace process carrying `WHARF_SERVICE=<service>` (null: none), and
 * `environment` what it was started with (`/proc/<pid>/environ`, shell bookkeeping left out);
 * `image`: the agent's base environment of workspace processes.
 */
export type HybridServiceEnvReply =
  | { ok: true; process: ServiceProcess | null; environment: Record<string, string>; image: Record<string, string> }
  | { ok: false; error: string };
