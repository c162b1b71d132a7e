# syntax=docker/dockerfile:1
# Craton HSM daemon image: a thin wrapper over the README's set-up (scripts/setup.sh, the
# same steps CI runs on a fresh Debian 12), then a slim runtime with only what the daemon
# and craton-hsm-admin need. See docs/operations.md ("Container image").
#
#   docker build -t craton-hsm .
#   docker run -d --name craton-hsmd -v craton-data:/var/lib/craton-hsm -v craton-run:/run/craton-hsm craton-hsm
#
# Build note: `npm run build` also builds the eBPF tracer, which reads the build host's
# kernel BTF (/sys/kernel/btf/vmlinux); build on a host whose kernel has BTF.

ARG NODE_IMAGE=node:20-bookworm

# ---- build: the README set-up steps (apt packages, npm ci, npm run build) ----------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY . .
RUN bash scripts/setup.sh \
 && test -f build/libcraton_hsm.so && test -f build/peercred.node && test -f dist/integrity.json \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime --------------------------------------------------------------------------------
FROM ${NODE_IMAGE}-slim AS runtime
ARG CRATON_UID=10001
ARG CRATON_GID=10001
ENV NODE_ENV=production \
    CRATON_HSM_CONFIG=/etc/craton-hsm/craton_hsm.toml \
    PATH=/opt/craton-hsm/bin:$PATH
RUN groupadd --system --gid ${CRATON_GID} craton-hsm \
 && useradd --system --uid ${CRATON_UID} --gid craton-hsm --home-dir /var/lib/craton-hsm --no-create-home --shell /usr/sbin/nologin craton-hsm \
 && install -d -o craton-hsm -g craton-hsm -m 0700 /var/lib/craton-hsm \
 && install -d -o craton-hsm -g craton-hsm -m 0750 /run/craton-hsm \
 && install -d -m 0755 /etc/craton-hsm
WORKDIR /opt/craton-hsm
# Exactly the runtime tree: package.json (the daemon finds its root by it), the compiled
# daemon and CLI with dist/integrity.json (checked by the power-on self-test), the module
# and the SO_PEERCRED addon, the embedded default config, production node_modules.
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
COPY --from=build /src/config ./config
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/build/libcraton_hsm.so /src/build/peercred.node ./build/
COPY deploy/docker/craton_hsm.toml /etc/craton-hsm/craton_hsm.toml
# The verify-then-spool gate for SIEM shipping (deploy/kubernetes: the audit-verify container).
COPY deploy/siem/craton-audit-ship.sh ./libexec/craton-audit-ship.sh
USER craton-hsm:craton-hsm
# Token store, audit log, counters (persistent) and the application socket (share with the
# application container; it mounts the same volume at /run/craton-hsm).
VOLUME ["/var/lib/craton-hsm", "/run/craton-hsm"]
# /metrics, /healthz, /readyz on loopback inside the container only.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/readyz').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/craton-hsm/bin/craton-hsmd"]
