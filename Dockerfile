# The Loop daemon (`loop serve`) in a container, for compose.yaml: see "Run Loop in a container" in
# README.md. It holds the self-contained `loop` that `make build` publishes, so it needs no .NET
# runtime, and runs agents through the host's Docker engine, whose socket compose mounts.
#
# The base is an argument because no image registry is reachable in tests: `make test` builds this
# same file FROM the local debootstrap'd bookworm (scripts/provision-test-env.sh).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8

# ca-certificates (and the OpenSSL it brings) for HTTPS to Anthropic and the chat platforms; tini as
# PID 1, so `docker stop` reaches the daemon as the SIGTERM it shuts down gracefully on.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# The single file unpacks its native libraries at start, under $HOME unless told otherwise; here
# HOME is the host user's home path (agents get it as their HOME), which the image does not have.
ENV DOTNET_BUNDLE_EXTRACT_BASE_DIR=/tmp \
    LOOP_API_ADDR=0.0.0.0:8222

COPY container/daemon-entrypoint.sh /usr/local/bin/loop-daemon-entrypoint
RUN chmod 0755 /usr/local/bin/loop-daemon-entrypoint
# Last: it changes with every build, and the layers above stay cached.
COPY artifacts/bin/loop /usr/local/bin/loop

# Never root: compose runs it as the host user (LOOP_UID:LOOP_GID) with the socket's group added.
USER 1000:1000
EXPOSE 8222
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/loop-daemon-entrypoint"]
CMD ["serve"]
