# The agent image for tests: the production image (container/Dockerfile, built without the npm CLI)
# plus the claude test double, published self-contained single-file (scripts/provision-test-env.sh).
ARG BASE_IMAGE=loop-agent-base-test:latest
FROM ${BASE_IMAGE}
COPY claude /usr/local/bin/claude
RUN claude --version
