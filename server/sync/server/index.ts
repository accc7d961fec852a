// The control server's half of live editing: relay groups of this server's websockets, and the
// pump between one websocket and its `wharf-doc` channel. Only server/main.ts wires it.
export { createDocService } from './doc-service.ts';
export type { DocService, DocServiceLimits, DocServiceOptions, DocSocketClose } from './doc-service.ts';
