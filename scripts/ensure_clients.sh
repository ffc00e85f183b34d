#!/usr/bin/env bash
# The coding-agent CLIs the client drills drive (tests/drills/test_coding_agents.py), installed
# from npm at exact versions into var/clients/ (git-ignored). Prints nothing when they are there.
# Exits 3 when npm itself is missing, so a test can skip with that reason; 1 on any other failure.
set -euo pipefail
cd "$(dirname "$0")/.."

CODEX_VERSION="0.171.0"
CLAUDE_CODE_VERSION="2.1.332"
DIR="var/clients"

installed() {  # <package> <version>: is that exact version in $DIR?
  local manifest="$DIR/node_modules/$1/package.json"
  [ -f "$manifest" ] && grep -q "\"version\": *\"$2\"" "$manifest"
}

if installed "@openai/codex" "$CODEX_VERSION" && installed "@anthropic-ai/claude-code" "$CLAUDE_CODE_VERSION" \
  && [ -x "$DIR/node_modules/.bin/codex" ] && [ -x "$DIR/node_modules/.bin/claude" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install Node.js and npm to run the coding-agent drills" >&2
  exit 3
fi
mkdir -p "$DIR"
cat > "$DIR/package.json" <<JSON
{
  "name": "gateway-test-clients",
  "private": true,
  "description": "CLIs the client drills run against the live gateway",
  "dependencies": {
    "@openai/codex": "$CODEX_VERSION",
    "@anthropic-ai/claude-code": "$CLAUDE_CODE_VERSION"
  }
}
JSON
echo "Installing @openai/codex@$CODEX_VERSION and @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION into $DIR…"
(cd "$DIR" && npm install --no-audit --no-fund --loglevel=error --save-exact >/dev/null) \
  || { echo "npm install failed in $DIR" >&2; exit 1; }
"$DIR/node_modules/.bin/codex" --version >/dev/null && "$DIR/node_modules/.bin/claude" --version >/dev/null \
  || { echo "the CLIs installed in $DIR do not start" >&2; exit 1; }
