import protobuf from 'protobufjs';

/**
 * BuildKit's progress messages as the Docker Engine API relays them: `{"id":"moby.buildkit.trace",
 * "aux":"<base64>"}`, each aux a protobuf `moby.buildkit.v1.StatusResponse`. The message types
 * below are the fields wharf reads, with the field numbers of BuildKit's
 * api/services/control/control.proto (fields not declared here are skipped by the decoder).
 */
const descriptor = {
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Timestamp: { fields: { seconds: { type: 'int64', id: 1 }, nanos: { type: 'int32', id: 2 } } },
          },
        },
      },
    },
    moby: {
      nested: {
        buildkit: {
          nested: {
            v1: {
              nested: {
                StatusResponse: {
                  fields: {
                    vertexes: { rule: 'repeated', type: 'Vertex', id: 1 },
                    statuses: { rule: 'repeated', type: 'VertexStatus', id: 2 },
                    logs: { rule: 'repeated', type: 'VertexLog', id: 3 },
                    warnings: { rule: 'repeated', type: 'VertexWarning', id: 4 },
                  },
                },
                Vertex: {
                  fields: {
                    digest: { type: 'string', id: 1 },
                    inputs: { rule: 'repeated', type: 'string', id: 2 },
                    name: { type: 'string', id: 3 },
                    cached: { type: 'bool', id: 4 },
                    started: { type: 'google.protobuf.Timestamp', id: 5 },
                    completed: { type: 'google.protobuf.Timestamp', id: 6 },
                    error: { type: 'string', id: 7 },
                  },
                },
                VertexStatus: {
                  fields: {
                    ID: { type: 'string', id: 1 },
                    vertex: { type: 'string', id: 2 },
                    name: { type: 'string', id: 3 },
                    current: { type: 'int64', id: 4 },
                    total: { type: 'int64', id: 5 },
                  },
                },
                VertexLog: {
                  fields: {
                    vertex: { type: 'string', id: 1 },
                    timestamp: { type: 'google.protobuf.Timestamp', id: 2 },
                    stream: { type: 'int64', id: 3 },
                    msg: { type: 'bytes', id: 4 },
                  },
                },
                VertexWarning: {
                  fields: {
                    vertex: { type: 'string', id: 1 },
                    level: { type: 'int64', id: 2 },
                    short: { type: 'bytes', id: 3 },
                    detail: { rule: 'repeated', type: 'bytes', id: 4 },
                    url: { type: 'string', id: 5 },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

const StatusResponse = protobuf.Root.fromJSON(descriptor).lookupType('moby.buildkit.v1.StatusResponse');

export type BuildkitVertex = { digest: string; name: string; cached: boolean; started: boolean; completed: boolean; error: string };
export type BuildkitLog = { vertex: string; stream: number; data: Buffer };
export type BuildkitStatus = { vertexes: BuildkitVertex[]; logs: BuildkitLog[]; warnings: string[] };

type RawStatus = {
  vertexes?: Array<{ digest?: string; name?: string; cached?: boolean; started?: unknown; completed?: unknown; error?: string }>;
  logs?: Array<{ vertex?: string; stream?: number | { toNumber(): number }; msg?: Uint8Array }>;
  warnings?: Array<{ short?: Uint8Array }>;
};

/** Decodes one `aux` value; throws on bytes that are not a StatusResponse. */
export function decodeBuildkitStatus(aux: string): BuildkitStatus {
  const raw = StatusResponse.decode(Buffer.from(aux, 'base64')) as unknown as RawStatus;
  return {
    vertexes: (raw.vertexes ?? []).map((v) => ({
      digest: v.digest ?? '',
      name: v.name ?? '',
      cached: v.cached ?? false,
      started: v.started != null,
      completed: v.completed != null,
      error: v.error ?? '',
    })),
    logs: (raw.logs ?? []).map((l) => ({
      vertex: l.vertex ?? '',
      stream: typeof l.stream === 'object' && l.stream ? l.stream.toNumber() : Number(l.stream ?? 1),
      data: Buffer.from(l.msg ?? new Uint8Array()),
    })),
    warnings: (raw.warnings ?? []).map((w) => Buffer.from(w.short ?? new Uint8Array()).toString('utf8')),
  };
}

/** For tests: the same message encoded, as BuildKit would send it. */
export function encodeBuildkitStatus(status: { vertexes?: Array<{ digest: string; name: string; started?: boolean; completed?: boolean; error?: string }>; logs?: Array<{ vertex: string; stream: number; data: string }> }): string {
  const ts = { seconds: 1, nanos: 0 };
  const message = StatusResponse.fromObject({
    vertexes: (status.vertexes ?? []).map((v) => ({ digest: v.digest, name: v.name, started: v.started ? ts : undefined, completed: v.completed ? ts : undefined, error: v.error ?? '' })),
    logs: (status.logs ?? []).map((l) => ({ vertex: l.vertex, stream: l.stream, msg: Buffer.from(l.data), timestamp: ts })),
  });
  return Buffer.from(StatusResponse.encode(message).finish()).toString('base64');
}
