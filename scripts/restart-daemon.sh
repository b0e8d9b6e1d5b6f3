#!/usr/bin/env bash
# `make restart`: restarts the Loop daemon of this LOOP_HOME (default ~/.loop) with the given `loop`
# binary (the one `make install` just put in place), the way it runs now:
#   - as the service `loop daemon:start` installed (systemd user unit, launchd agent): `loop
#     daemon:start` again, which points the service at this binary and restarts it;
#   - started by hand (`loop serve`, `make run`): stopped with SIGTERM, so runs are ended and the
#     store closed cleanly, then started again in the background, its output appended to
#     $LOOP_HOME/daemon.log;
#   - not running: started in the background the same way.
# A daemon in a container (compose.yaml) is not this script's: `docker compose up -d --build` it.
# Needs no root: it signals only a `loop serve` of the user's own.
set -euo pipefail

loop="${1:?usage: restart-daemon.sh /path/to/loop}"
home="${LOOP_HOME:-$HOME/.loop}"
[[ "$home" == "~/"* ]] && home="$HOME/${home#\~/}"
log_file="$home/daemon.log"

say() { printf 'restart: %s\n' "$*"; }
die() { printf 'restart: %s\n' "$*" >&2; exit 1; }

[[ -x "$loop" ]] || die "$loop is not an executable: run 'make install' first"

# `loop daemon:status` says whether a service is installed and which pid answers; it exits 1 when
# nothing answers.
status="$("$loop" daemon:status 2>&1 || true)"
if grep -qE '^ +state: +installed' <<<"$status"; then
  say "the daemon runs as a service: reinstalling it with $loop"
  exec "$loop" daemon:start
fi

pid="$(awk '$1 == "pid:" && $2 ~ /^[0-9]+$/ { print $2; exit }' <<<"$status")"
if [[ -n "$pid" ]]; then
  # The pid comes from the daemon: make sure it is a `loop serve` of this machine before signalling it
  # (a daemon in a container reports a pid of its own namespace).
  cmdline="$(ps -o args= -p "$pid" 2>/dev/null || true)"
  [[ "$cmdline" =~ (^|/)loop(\.dll)?\ serve ]] ||
    die "the daemon of $home reports pid $pid, which is no 'loop serve' here (in a container? restart it there); stop it yourself, then run 'make restart' again"
  say "stopping the daemon started by hand (pid $pid)"
  kill -TERM "$pid" || die "cannot signal pid $pid (another user's process?)"
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  ! kill -0 "$pid" 2>/dev/null || die "pid $pid did not exit within 60 s of SIGTERM"
else
  say "no daemon answers for $home: starting one"
fi

mkdir -p "$home"
say "starting '$loop serve' in the background (log: $log_file)"
# In a session of its own where there is setsid (Linux), so no signal to this terminal reaches it.
detach=()
command -v setsid >/dev/null && detach=(setsid)
LOOP_HOME="$home" "${detach[@]}" nohup "$loop" serve >>"$log_file" 2>&1 </dev/null &
for ((i = 0; i < 600; i++)); do
  if "$loop" daemon:status >/dev/null 2>&1; then
    "$loop" daemon:status | sed -n '/^Daemon/,$p'
    exit 0
  fi
  sleep 0.1
done
tail -n 20 "$log_file" >&2
die "the daemon did not answer within 60 s (log: $log_file)"
