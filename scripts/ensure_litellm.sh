#!/usr/bin/env bash
# LiteLLM's proxy for the side-by-side bench (`make bench`; COMPARE=none leaves it out), in a
# throwaway virtualenv under var/ (git-ignored), never in the project's own dependencies.
# One exact release, pinned here, at least 1.83.7 and never 1.82.7 or 1.82.8 (both were
# compromised on PyPI). 1.108.7 is the newest whose exact pins of its companion packages
# (litellm-enterprise, litellm-proxy-extras) resolved from our package index in December 2026;
# LITELLM_VERSION=… tries another.
# Prints the virtualenv's python on stdout; the install log goes to var/bench/litellm-install.log.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${LITELLM_VERSION:-1.108.7}"
case "$VERSION" in
  1.82.7 | 1.82.8) echo "litellm $VERSION was a compromised release: refusing it" >&2; exit 1 ;;
esac
if [ "$(printf '%s\n' 1.83.7 "$VERSION" | sort -V | head -n1)" != 1.83.7 ]; then
  echo "litellm $VERSION is older than 1.83.7: refusing it" >&2
  exit 1
fi
VENV="var/bench/litellm-venv"
PYTHON="${LITELLM_PYTHON:-python3.11}"
MARK="$VENV/.installed-$VERSION"

if [ ! -f "$MARK" ]; then
  mkdir -p var/bench
  rm -rf "$VENV"
  echo "Installing litellm[proxy]==$VERSION into $VENV (a few minutes the first time; log: var/bench/litellm-install.log)…" >&2
  "$PYTHON" -m venv "$VENV"
  {
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install "litellm[proxy]==$VERSION"
  } >var/bench/litellm-install.log 2>&1 || {
    echo "could not install litellm[proxy]==$VERSION; see var/bench/litellm-install.log" >&2
    exit 1
  }
  installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')"
  if [ "$installed" != "$VERSION" ]; then
    echo "expected litellm $VERSION in $VENV, found $installed" >&2
    exit 1
  fi
  touch "$MARK"
fi
echo "$VENV/bin/python"
