#!/usr/bin/env bash
# Loop's benchmarks, (a) to (h), (j) and (k) of bench/README.md, in one run with their baselines.
# Prints the summary table and writes it to bench/results/latest.md. `run.sh cluster` runs (j) alone
# (no Docker needed) and writes bench/results/cluster.md; `run.sh chaos` runs (i). Everything it starts listens
# on 127.0.0.1 only, stops by itself, and is cleaned up on exit (trap), even on Ctrl-C.
# Needs: artifacts/bin/loop (make build), a Docker engine and loop-agent-test:latest (make test-env),
# node, wrk, for (j) PostgreSQL's server (Debian's postgresql, as the tests use it) and for (k) Debian's
# Dovecot and Exim (the tests' mail servers). `make bench` does the first two and the mail servers
# (make test-env); this script installs wrk when missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DOTNET="${DOTNET:-dotnet}"
LOOP_BIN="$ROOT/artifacts/bin/loop"
BASE_IMAGE="${BENCH_BASE_IMAGE:-loop-agent-test:latest}"
BENCH_IMAGE=loop-bench-agent:latest
RESULTS="$ROOT/bench/results"
STATE="$(mktemp -d /tmp/loop-bench.XXXXXX)"
NODE_NAME="loop-bench-$$"
export LOOP_BENCH_PIDS="$STATE/pids"   # every server the bench starts is listed here for the trap
: >"$LOOP_BENCH_PIDS"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid
  while read -r pid; do
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
  done <"$LOOP_BENCH_PIDS"
  sleep 0.5
  while read -r pid; do
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done <"$LOOP_BENCH_PIDS"
  if docker info >/dev/null 2>&1; then
    docker ps -aq --filter "label=loop.node=$NODE_NAME" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker ps -aq --filter "label=loop.bench=$NODE_NAME" | xargs -r docker rm -f >/dev/null 2>&1 || true
  fi
  if [[ $status -eq 0 && -z "${BENCH_KEEP_STATE:-}" ]]; then
    rm -rf "$STATE"
  else
    log "logs and state kept in $STATE"
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites -----------------------------------------------------------------------------
MODE="${1:-all}"
[[ -x "$LOOP_BIN" ]] || die "$LOOP_BIN is missing: run \`make build\` (or \`make bench\`)"
if [[ "$MODE" != cluster ]]; then
  docker info >/dev/null 2>&1 || die "no Docker engine answers: run \`make test-env\` (or \`make bench\`)"
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "$BASE_IMAGE is missing: run \`make test-env\`"
  command -v node >/dev/null 2>&1 || die "node is needed for the baseline server"
fi
if [[ "$MODE" != cluster && "$MODE" != chaos ]]; then
  [[ -x /usr/sbin/dovecot && -x /usr/sbin/exim4 ]] || die "Dovecot and Exim are needed for (k): run \`make test-env\`"
fi
if [[ "$MODE" != chaos ]]; then
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || die "PostgreSQL's server is needed for (j): run \`bash scripts/provision-test-env.sh\`"
fi
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

if [[ "$MODE" != cluster ]]; then
  log "building $BENCH_IMAGE FROM $BASE_IMAGE (bench/image)"
  DOCKER_BUILDKIT=0 docker build -q --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$BENCH_IMAGE" bench/image >"$STATE/image-build.log" 2>&1 \
    || { cat "$STATE/image-build.log" >&2; die "docker build of $BENCH_IMAGE failed"; }
fi

log "building bench/Loop.Bench (Release)"
for attempt in 1 2 3; do
  if "$DOTNET" build bench/Loop.Bench/Loop.Bench.csproj -c Release --nologo -v quiet >"$STATE/build.log" 2>&1; then
    break
  fi
  [[ $attempt -lt 3 ]] || { tail -n 30 "$STATE/build.log" >&2; die "build of bench/Loop.Bench failed"; }
  log "build failed (attempt $attempt), retrying in 5 s (another build may hold a lock)"
  sleep 5
done
BENCH="$ROOT/bench/Loop.Bench/bin/Release/net10.0/Loop.Bench"
# The in-process nodes mount the published loop into containers, as the daemon does.
export LOOP_CONTAINER_BINARY="$LOOP_BIN"

mkdir -p "$RESULTS"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
log "machine load before: $LOAD_BEFORE (numbers on 2 cores are noisy when other work runs)"

# Each step is bounded by `timeout` and writes its result rows to $STATE/<id>.json.
step() {
  local id="$1" limit="$2"
  shift 2
  log "($id) $*"
  if ! timeout --signal=INT --kill-after=15 "$limit" "$BENCH" "$@" --out "$STATE/$id.json" >"$STATE/$id.log" 2> >(tee -a "$STATE/$id.err" >&2); then
    log "($id) failed: see $STATE/$id.log and $STATE/$id.err"
  fi
}

# (j) A cluster of loop serve nodes on a private PostgreSQL server (about 9 minutes, most of it
# waiting for j3's due instants): failover, ingest through 1 vs 3 nodes, fire lateness, start-up.
cluster_steps() {
  step j1 600 cluster --part failover --state "$STATE" --loop-bin "$LOOP_BIN" --claude "$ROOT/bench/cluster/claude" --kills 10
  step j2 300 cluster --part ingest --state "$STATE" --loop-bin "$LOOP_BIN" --channels 100 --connections 48 --seconds 10 --script "$ROOT/bench/baseline/post-message.lua"
  step j3 900 cluster --part lateness --state "$STATE" --loop-bin "$LOOP_BIN" --tasks 10000 --channels 100 --window 60 --lead 120
  step j4 300 cluster --part startup --state "$STATE" --loop-bin "$LOOP_BIN" --runs 3
}
CLUSTER_INPUTS="$STATE/j1.json,$STATE/j2.json,$STATE/j3.json,$STATE/j4.json"

if [[ "$MODE" == cluster ]]; then
  cluster_steps
  "$BENCH" report --inputs "$CLUSTER_INPUTS" --out "$RESULTS/cluster.md" --context "Load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)."
  exit 0
fi

if [[ "$MODE" == chaos ]]; then
  # (i), on its own (`make chaos`): several minutes of real containers and restarts.
  step i 1500 chaos --state "$STATE" --loop-bin "$LOOP_BIN" --image "$BASE_IMAGE" --channels 20 --messages 500 --kills 50
  "$BENCH" report --inputs "$STATE/i.json" --out "$RESULTS/chaos.md" --context "Load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)."
  exit 0
fi

step a 180 orchestration --home "$STATE/a-home" --node "$NODE_NAME" --messages 1000 --warmup 200 --channels 50 --raw "$STATE/a-samples.csv"
# (k) Telegram, WhatsApp and email inbound to the sandbox call (about 5 minutes, most of it email: Dovecot
# holds each IDLE notification 500 ms). Its private mail servers stop with it, a watchdog of theirs even on kill -9.
step k 600 chat-inbound --home "$STATE/k-home" --node "$NODE_NAME" --messages 200 --warmup 20 --chats 20 --raw "$STATE/k-samples.csv"
step b 600 container --home "$STATE/b-home" --node "$NODE_NAME" --image "$BENCH_IMAGE" --label "loop.bench=$NODE_NAME" --count 20 --warmup 2
step c 120 ingest --state "$STATE" --id c --daemon loop --loop-bin "$LOOP_BIN" --channels 100 --connections 50 --seconds 10 --script "$ROOT/bench/baseline/post-message.lua"
step c2 120 ingest --state "$STATE" --id c2 --daemon instant --channels 100 --connections 50 --seconds 10 --script "$ROOT/bench/baseline/post-message.lua"
step d 300 startup --state "$STATE" --loop-bin "$LOOP_BIN" --image "$BENCH_IMAGE" --node-script "$ROOT/bench/baseline/health-server.js" --runs 5 --idle 5
step e 120 health --state "$STATE" --loop-bin "$LOOP_BIN" --image "$BENCH_IMAGE" --node-script "$ROOT/bench/baseline/health-server.js" --seconds 10

# Task scheduler: fire lateness and memory (about 4 minutes together, most of it waiting for due instants).
step f1 120 lateness --id f1 --home "$STATE/f1-home" --node "$NODE_NAME" --tasks 10000 --channels 100 --types cron --window 0 --lead 30
step f2 150 lateness --id f2 --home "$STATE/f2-home" --node "$NODE_NAME" --tasks 10000 --channels 100 --types once --window 60 --lead 30
# h makes 100,000 tasks due over an hour from --lead seconds on, measures loop serve's RSS with them
# armed, and leaves them (and their plan) for g, which measures the first minute of that hour.
step h 300 task-memory --state "$STATE" --loop-bin "$LOOP_BIN" --node "$NODE_NAME" --tasks 100000 --channels 100 --lead 150 --settle 10 --plan-out "$STATE/h-plan.json"
if [[ -f "$STATE/h-plan.json" ]]; then
  step g 240 lateness --id g --home "$STATE/h-home" --node "$NODE_NAME" --plan "$STATE/h-plan.json" --measure 60
else
  log "(g) skipped: step h left no tasks to measure"
fi

cluster_steps

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
inputs="$STATE/a.json,$STATE/k.json,$STATE/b.json,$STATE/c.json,$STATE/c2.json,$STATE/d.json,$STATE/e.json,$STATE/f1.json,$STATE/f2.json,$STATE/g.json,$STATE/h.json,$CLUSTER_INPUTS"
"$BENCH" report --inputs "$inputs" --out "$RESULTS/latest.md" \
  --context "Load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $LOAD_AFTER. Other work on the machine shows up as scheduling delays of a few ms in the tails."
