#!/usr/bin/env bash
# Prepares this machine for Loop's tests, and is fast when everything is in place already:
#   1. a running Docker engine (installs docker.io and starts dockerd when `docker info` fails),
#   2. loop-test-base:latest, a debootstrap'd Debian bookworm minbase (no registry is reachable),
#   3. loop-agent-base-test:latest, the production container/Dockerfile built on that base
#      without the npm CLI,
#   4. loop-agent-test:latest, the above plus the `claude` test double as /usr/local/bin/claude,
#   5. Debian's chromium at /usr/bin/chromium, which the dashboard's Playwright tests drive
#      (they never download a browser),
#   6. Debian's PostgreSQL server binaries (/usr/lib/postgresql/<version>/bin), from which the
#      tests start private servers of their own (tests/Loop.Testing/PostgresServer.cs); no
#      system-wide cluster is made or started,
#   7. Debian's Dovecot (IMAP with IDLE, LMTP) and Exim (SMTP), from which the tests start private
#      mail servers of their own (tests/Loop.Testing/MailServer.cs); the system-wide services the
#      packages bring are never started, and are disabled,
#   8. Docker Compose, which the compose test runs compose.yaml with: the `docker compose` plugin
#      when the machine has it, else Debian's `docker-compose` (the plugin is no Debian package).
# Images 3 and 4 carry a label with a hash of their inputs and are rebuilt only when it changes.
# Run as root (apt, dockerd). Environment: LOOP_TEST_STATE_DIR (default <repo>/.loop-test) holds
# the dockerd log and build outputs; LOOP_DEBIAN_MIRROR overrides the mirror for debootstrap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${LOOP_TEST_STATE_DIR:-$ROOT/.loop-test}"
BASE_IMAGE=loop-test-base:latest
AGENT_BASE_IMAGE=loop-agent-base-test:latest
AGENT_TEST_IMAGE=loop-agent-test:latest
HASH_LABEL=loop.build-hash
export DOCKER_BUILDKIT=0   # dockerd 20.10 here; the legacy builder builds FROM local images offline

log() { printf '[provision] %s\n' "$*"; }
die() { printf '[provision] error: %s\n' "$*" >&2; exit 1; }

apt_install() {
  log "apt-get install $*"
  if [[ -z "${APT_UPDATED:-}" ]]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_docker() {
  if docker info >/dev/null 2>&1; then
    log "docker engine: running ($(docker version --format '{{.Server.Version}}'))"
    return
  fi
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  if ((${#missing[@]})); then
    apt_install "${missing[@]}"
  fi

  mkdir -p "$STATE_DIR"
  local pid
  pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
  if [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]]; then
    log "dockerd is starting already (pid $pid); waiting for it"
  else
    # A dockerd killed with the session that started it leaves its pid file, and a reused pid
    # in it would make the new dockerd refuse to start.
    rm -f /var/run/docker.pid

    log "starting dockerd --storage-driver=overlay2 (log: $STATE_DIR/dockerd.log)"
    # Its own session, so it outlives this script and the shell that ran it.
    setsid nohup dockerd --storage-driver=overlay2 >"$STATE_DIR/dockerd.log" 2>&1 &
  fi
  local i
  for ((i = 0; i < 240; i++)); do
    docker info >/dev/null 2>&1 && { log "docker engine: ready"; return; }
    sleep 0.25
  done
  tail -n 40 "$STATE_DIR/dockerd.log" >&2 || true
  die "dockerd did not answer within 60 s"
}

# The bookworm mirror apt already uses (deb822 .sources or one-line .list), else deb.debian.org.
debian_mirror() {
  if [[ -n "${LOOP_DEBIAN_MIRROR:-}" ]]; then
    echo "$LOOP_DEBIAN_MIRROR"
    return
  fi
  local m=""
  shopt -s nullglob
  local sources=(/etc/apt/sources.list.d/*.sources) lists=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  shopt -u nullglob
  if ((${#sources[@]})); then
    m="$(awk 'BEGIN { RS = ""; IGNORECASE = 1 }
      /(^|\n)Suites:[^\n]*bookworm([ \n]|$)/ && !/security/ {
        if (match($0, /(^|\n)URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH); sub(/.*URIs:[ \t]*/, "", s); print s; exit }
      }' "${sources[@]}")"
  fi
  if [[ -z "$m" ]]; then
    m="$(cat "${lists[@]}" 2>/dev/null | awk '$1 == "deb" && $0 !~ /security/ {
        for (i = 2; i <= NF; i++) if ($i ~ /^https?:/ && $(i + 1) == "bookworm") { print $i; exit } }')"
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

ensure_base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE: present"
    return
  fi
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  local mirror rootfs
  mirror="$(debian_mirror)"
  rootfs="$(mktemp -d /tmp/loop-rootfs.XXXXXX)"
  log "debootstrap --variant=minbase bookworm from $mirror (about 30 s)"
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$STATE_DIR/debootstrap.log" 2>&1; then
    tail -n 40 "$STATE_DIR/debootstrap.log" >&2
    rm -rf "$rootfs"
    die "debootstrap failed (log: $STATE_DIR/debootstrap.log)"
  fi
  log "docker import -> $BASE_IMAGE"
  tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

# A hash of the named files (paths relative to the repo, contents) and any extra words.
inputs_hash() {
  local extra="$1"
  shift
  {
    echo "$extra"
    (cd "$ROOT" && sha256sum "$@")
  } | sha256sum | cut -c1-64
}

image_hash() {
  docker image inspect -f "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true
}

image_id() { docker image inspect -f '{{.Id}}' "$1"; }

ensure_agent_base_image() {
  local hash
  hash="$(inputs_hash "base=$(image_id "$BASE_IMAGE")" container/Dockerfile container/entrypoint.sh)"
  if [[ "$(image_hash "$AGENT_BASE_IMAGE")" == "$hash" ]]; then
    log "$AGENT_BASE_IMAGE: up to date"
    return
  fi
  log "building $AGENT_BASE_IMAGE from container/Dockerfile (log: $STATE_DIR/agent-base-build.log)"
  if ! docker build \
      --build-arg BASE_IMAGE="$BASE_IMAGE" \
      --build-arg CLAUDE_CODE_PACKAGE= \
      --label "$HASH_LABEL=$hash" \
      -t "$AGENT_BASE_IMAGE" \
      "$ROOT/container" >"$STATE_DIR/agent-base-build.log" 2>&1; then
    tail -n 40 "$STATE_DIR/agent-base-build.log" >&2
    die "docker build of $AGENT_BASE_IMAGE failed"
  fi
}

ensure_agent_test_image() {
  local sources hash
  mapfile -t sources < <(cd "$ROOT" && find tests/ClaudeDouble -type f \
    -not -path '*/bin/*' -not -path '*/obj/*' -not -name '*.md' | LC_ALL=C sort)
  hash="$(inputs_hash "base=$(image_id "$AGENT_BASE_IMAGE")" "${sources[@]}" Directory.Build.props Directory.Packages.props)"
  if [[ "$(image_hash "$AGENT_TEST_IMAGE")" == "$hash" ]]; then
    log "$AGENT_TEST_IMAGE: up to date"
    return
  fi
  command -v dotnet >/dev/null 2>&1 || die "the .NET SDK (dotnet) is needed to publish the claude double"
  local context="$STATE_DIR/agent-test-image"
  rm -rf "$context"
  mkdir -p "$context"
  log "publishing the claude double (linux-x64, self-contained, single file)"
  if ! dotnet publish "$ROOT/tests/ClaudeDouble/ClaudeDouble.csproj" -c Release -r linux-x64 --self-contained \
      -p:PublishSingleFile=true -p:DebugType=none -o "$context" >"$STATE_DIR/double-publish.log" 2>&1; then
    tail -n 40 "$STATE_DIR/double-publish.log" >&2
    die "dotnet publish of the claude double failed"
  fi
  log "building $AGENT_TEST_IMAGE (log: $STATE_DIR/agent-test-build.log)"
  if ! docker build \
      -f "$ROOT/tests/ClaudeDouble/test-image.Dockerfile" \
      --build-arg BASE_IMAGE="$AGENT_BASE_IMAGE" \
      --label "$HASH_LABEL=$hash" \
      -t "$AGENT_TEST_IMAGE" \
      "$context" >"$STATE_DIR/agent-test-build.log" 2>&1; then
    tail -n 40 "$STATE_DIR/agent-test-build.log" >&2
    die "docker build of $AGENT_TEST_IMAGE failed"
  fi
}

ensure_chromium() {
  if [[ -x /usr/bin/chromium ]]; then
    # The wrapper script prints a harmless shell warning on stderr before the version.
    log "chromium: present ($(/usr/bin/chromium --version 2>/dev/null | head -n 1))"
    return
  fi
  apt_install chromium
  [[ -x /usr/bin/chromium ]] || die "apt-get installed chromium, but /usr/bin/chromium is missing"
}

# The package would make a system-wide "main" cluster and start it; the tests never use one, so
# postgresql-common is told not to make it before the package is installed.
ensure_postgresql() {
  shopt -s nullglob
  local servers=(/usr/lib/postgresql/*/bin/postgres)
  shopt -u nullglob
  if ((${#servers[@]})); then
    log "postgresql: present ($(printf '%s\n' "${servers[@]%/bin/postgres}" | sort -V | tail -n 1))"
    return
  fi
  mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/loop-tests.conf
  apt_install postgresql
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null \
    || die "apt-get installed postgresql, but there is no /usr/lib/postgresql/<version>/bin/postgres"
}

# A daemon that a package's maintainer script would start (and enable) when installed. The tests
# run private instances on free ports; a system-wide server would only take ports 25, 143 and 993.
# invoke-rc.d and deb-systemd-invoke ask policy-rc.d first, so one that says "no" (101) while apt
# runs keeps them from starting; a policy-rc.d the machine has already is left as it is.
apt_install_no_start() {
  local policy=/usr/sbin/policy-rc.d own_policy=""
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\n# provision-test-env.sh: no service starts while it installs packages\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    own_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # --no-remove: Exim must not replace another mail server that the machine relies on.
  apt_install --no-remove "$@"
  if [[ -n "$own_policy" ]]; then
    rm -f "$policy"
    trap - EXIT
  fi
}

# Not at the next boot either: sysvinit links and systemd units alike (both work without a
# running init system).
disable_services() {
  local service
  for service in "$@"; do
    if [[ -e "/etc/init.d/$service" ]] && command -v update-rc.d >/dev/null 2>&1; then
      update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
    if command -v systemctl >/dev/null 2>&1; then
      systemctl disable "$service" >/dev/null 2>&1 || true
    fi
  done
}

# Dovecot serves IMAP with IDLE and delivers over LMTP; Exim takes SMTP and hands mail to Dovecot's
# LMTP (Dovecot's own submission service only relays to an SMTP server, and its LMTP speaks no SMTP).
# Both run unprivileged from a config file of the test's own.
ensure_mail_servers() {
  local missing=()
  [[ -x /usr/sbin/dovecot && -x /usr/lib/dovecot/imap ]] || missing+=(dovecot-imapd)
  [[ -x /usr/lib/dovecot/lmtp ]] || missing+=(dovecot-lmtpd)
  [[ -x /usr/sbin/exim4 ]] || missing+=(exim4-daemon-light)
  if ((${#missing[@]} == 0)); then
    log "mail servers: present ($(dovecot --version | cut -d' ' -f1), exim $(exim4 -bV 2>/dev/null | awk 'NR == 1 { print $3 }'))"
    return
  fi
  apt_install_no_start "${missing[@]}"
  disable_services dovecot dovecot.socket exim4
  [[ -x /usr/sbin/dovecot && -x /usr/lib/dovecot/imap && -x /usr/lib/dovecot/lmtp && -x /usr/sbin/exim4 ]] \
    || die "apt-get installed ${missing[*]}, but /usr/sbin/dovecot, /usr/lib/dovecot/{imap,lmtp} or /usr/sbin/exim4 is missing"
}

ensure_compose() {
  if docker compose version >/dev/null 2>&1; then
    log "compose: present ($(docker compose version --short 2>/dev/null || echo plugin))"
    return
  fi
  if docker-compose version >/dev/null 2>&1; then
    log "compose: present (docker-compose $(docker-compose version --short 2>/dev/null))"
    return
  fi
  apt_install docker-compose
  docker-compose version >/dev/null 2>&1 || die "apt-get installed docker-compose, but 'docker-compose version' fails"
}

mkdir -p "$STATE_DIR"
ensure_docker
ensure_base_image
ensure_agent_base_image
ensure_agent_test_image
ensure_chromium
ensure_postgresql
ensure_mail_servers
ensure_compose
log "ready: $AGENT_TEST_IMAGE ($(docker image inspect -f '{{.Size}}' "$AGENT_TEST_IMAGE" | numfmt --to=iec 2>/dev/null || true))"
