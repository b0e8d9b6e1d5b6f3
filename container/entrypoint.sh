#!/usr/bin/env bash
# Loop agent entrypoint. The daemon writes the run's secrets to stdin as KEY=VALUE lines ended by
# an empty line (or EOF), so they never appear in the container's config, command line or image.
# Each is exported, then the command runs with whatever remains of stdin.
#
# `read` takes one byte at a time from a pipe, so nothing after the empty line is consumed.
# Values are never echoed; a bad line is reported by its line number only.
set -euo pipefail

line_no=0
while IFS= read -r line || [[ -n "$line" ]]; do
  line_no=$((line_no + 1))
  [[ -z "$line" ]] && break
  key="${line%%=*}"
  if [[ "$line" != *=* || ! "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
    echo "loop-entrypoint: secrets line $line_no is not KEY=VALUE" >&2
    exit 2
  fi
  export "$key=${line#*=}"
done
unset line line_no key

if [[ $# -eq 0 ]]; then
  echo "loop-entrypoint: no command given" >&2
  exit 2
fi
exec "$@"
