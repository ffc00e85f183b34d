#!/usr/bin/env bash
# Starts the local PostgreSQL and Redis the tests use, if they are installed but stopped,
# and installs the browser the console tests drive.
set -uo pipefail
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null; then
    echo "Starting PostgreSQL…"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    echo "Starting Redis…"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }
# The console's browser tests drive Debian's Chromium (never a browser downloaded by a test tool).
if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's chromium for the browser tests…"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  { $SUDO apt-get install -y chromium >/dev/null 2>&1 || {
      $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y chromium >/dev/null 2>&1; }; } \
    || { echo "could not install chromium (Debian package 'chromium'); install it and retry" >&2; exit 1; }
fi
# Images in requests are read with tesseract (guardrail policies' `images:`); without it each
# policy's fallback applies, and the image drill is skipped.
if ! command -v tesseract >/dev/null; then
  echo "Installing Debian's tesseract-ocr for the image guardrails…"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  { $SUDO apt-get install -y tesseract-ocr >/dev/null 2>&1 || {
      $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y tesseract-ocr >/dev/null 2>&1; }; } \
    || echo "could not install tesseract-ocr (Debian package); image checks will use each policy's fallback" >&2
fi
# The multi-process drill (tests/drills/test_cluster.py) runs its gateways behind Debian's
# HAProxy, as docs/deployment.md does; without it that drill is skipped.
if ! command -v haproxy >/dev/null; then
  echo "Installing Debian's haproxy for the multi-process drill…"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  { $SUDO apt-get install -y haproxy >/dev/null 2>&1 || {
      $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y haproxy >/dev/null 2>&1; }; } \
    || echo "could not install haproxy (Debian package); the multi-process drill will be skipped" >&2
fi
# The coding-agent CLIs the client drill runs (npm, pinned, into var/clients/), installed ahead of
# the tests; a failure here only warns: the drill installs them itself, and says why it cannot.
"$(dirname "$0")/ensure_clients.sh" || [ $? -eq 3 ] || echo "warning: the coding-agent CLIs are not installed (scripts/ensure_clients.sh)" >&2
