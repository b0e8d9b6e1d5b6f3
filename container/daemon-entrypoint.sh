#!/bin/sh
# Entrypoint of the daemon's image (the Dockerfile at the top of the repository; compose.yaml runs it).
#
# The daemon creates agent containers through the host's Docker engine, which reads the source of
# every bind mount as a path on the host. What it mounts into them (project dirs, the Loop home's
# claude-state, run files and socket dir, the `loop` binary for `loop mcp`) must therefore be at the
# same path in this container as on the host: compose mounts the Loop home and the projects so.
# This checks that the Loop home is such a mount, and puts a copy of this image's `loop` in it for
# agents to run (the image's own path means nothing to the host's engine).
set -eu

fail() {
  echo "loop-daemon-entrypoint: $*" >&2
  exit 2
}

[ -n "${LOOP_HOME:-}" ] || fail "LOOP_HOME is not set: mount the host's Loop home at its own path and name it in LOOP_HOME (see compose.yaml)"
case "$LOOP_HOME" in
  /*) ;;
  *) fail "LOOP_HOME must be an absolute path, not '$LOOP_HOME'" ;;
esac
LOOP_HOME="${LOOP_HOME%/}"
# The fifth field of mountinfo is the mount point (a space in it is written \040).
mount_point=$(printf '%s' "$LOOP_HOME" | sed 's/ /\\040/g')
awk -v m="$mount_point" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo ||
  fail "LOOP_HOME ($LOOP_HOME) is not mounted from the host: mount the host's Loop home at that same path (-v $LOOP_HOME:$LOOP_HOME), or agents would get empty directories"
[ -w "$LOOP_HOME" ] ||
  fail "LOOP_HOME ($LOOP_HOME) is not writable by uid $(id -u): give it to that user on the host (chown), or run the container as its owner (LOOP_UID and LOOP_GID in compose.yaml)"
case "${HOME:-/}" in
  /) fail "HOME is not set: give the host user's home path (compose.yaml passes \${HOME}); agents get a private HOME at that path" ;;
esac

binary="$LOOP_HOME/run/bin/loop"
if ! cmp -s /usr/local/bin/loop "$binary"; then
  mkdir -p "$LOOP_HOME/run/bin"
  # A new file renamed over the old one: agents still running keep the copy they were started with.
  cp /usr/local/bin/loop "$binary.new"
  chmod 0755 "$binary.new"
  mv -f "$binary.new" "$binary"
fi
export LOOP_CONTAINER_BINARY="$binary"

exec /usr/local/bin/loop "$@"
