# The wharf server image: the control server, the web UI, the workspace agent bundle (which the
# docker driver copies, with this image's node and the libraries ldd lists, into every engine's
# runtime volume) and the helper's downloads (wharf.mjs, wharf-linux-x64, install.sh).
#
#   docker build -t wharf .
#   docker run --init -p 8080:8080 -v wharf-data:/data wharf          # process driver
#   docker compose up                                                 # see compose.yaml, README
#
# The entrypoint is the plain `wharf` command: `serve` (the default) runs the control server,
# with the flags of `npm start -- …` (README, Configuration); anything else is the helper, e.g.
# `docker run --rm wharf --version`.
#
# BUILD_BASE must have node, npm and a C++ tool chain (node-pty's add-on is compiled), BASE
# node with a glibc and `ldd` (libc-bin). Both are Debian bookworm here. Without a registry, pass
# locally imported images (test/support/server-image.ts makes them with mmdebstrap):
#   docker build --build-arg BASE=… --build-arg BUILD_BASE=… .
ARG BASE=node:20-bookworm-slim
ARG BUILD_BASE=node:20-bookworm

FROM ${BUILD_BASE} AS build
# node-gyp builds node-pty against this node's own headers rather than downloading them.
ENV npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
COPY . /src
# One step, on purpose: where the storage driver copies a whole file system per layer (vfs, as on
# wharf's test engine) every extra layer of this stage costs a gigabyte, and no dev dependency is
# ever kept in a layer. Every part (agent, helper, executable, web) must build: build.mjs exits 1
# if one fails. Only what the server runs goes to /out: the dev dependencies, tests and build
# inputs stay behind, and so does node-pty (60 MB with its build tree): only the agent uses it,
# from its own copy of the add-on in dist/agent (the server never loads it; the lint and
# test/entry-points.test.ts check that).
RUN cd /src \
 && npm ci \
 && node scripts/build.mjs \
 && npm prune --omit=dev \
 && rm -rf node_modules/.cache node_modules/node-pty \
 && find server -name '*.test.ts' -delete \
 && mkdir -p /out/web \
 && cp -a package.json tsconfig.json bin server dist node_modules /out/ \
 && cp -a web/dist /out/web/dist \
 && cd / && rm -rf /src /root/.npm /tmp/*

FROM ${BASE}
# A user of its own (not the base's uid 1000 `node`), the data dir it owns (a new named volume
# mounted at /data takes this owner), and `wharf` on PATH.
RUN groupadd --system --gid 10001 wharf \
 && useradd --system --uid 10001 --gid wharf --home-dir /data --shell /usr/sbin/nologin wharf \
 && mkdir -p /data \
 && chown wharf:wharf /data \
 && ln -s /opt/wharf/bin/wharf.js /usr/local/bin/wharf
COPY --from=build /out /opt/wharf
# GLIBC_TUNABLES: the server keeps up to 64 MiB of freed heap instead of returning it at once,
# as scripts/start.sh does (why: there, and docs/server-image.md).
ENV NODE_ENV=production \
    GLIBC_TUNABLES=glibc.malloc.trim_threshold=67108864 \
    WHARF_HOST=0.0.0.0 \
    WHARF_PORT=8080 \
    WHARF_DATA_DIR=/data
USER wharf
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.WHARF_PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["wharf"]
CMD ["serve"]
