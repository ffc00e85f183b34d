#!/usr/bin/env bash
# What `make bench` needs besides the virtualenv: the `hey` load generator and a reachable
# PostgreSQL (the bench creates its own database, gateway_bench, in it).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v hey >/dev/null 2>&1; then
  echo "hey (HTTP load generator) is missing: installing it with apt-get install -y hey"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get install -y hey >/dev/null || {
    $SUDO apt-get update >/dev/null && $SUDO apt-get install -y hey >/dev/null
  } || { echo "could not install hey; install it (Debian/Ubuntu package 'hey') and retry" >&2; exit 1; }
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  # The test set-up script knows how to start the local PostgreSQL (and Redis).
  scripts/ensure_services.sh
fi
