#!/usr/bin/env bash
# Installs the project into the virtualenv whose bin/ is $1, saying what it is doing: a first
# install takes minutes, and minutes of silence look like a hang. The whole log: var/install.log.
set -uo pipefail
bin=$1
mkdir -p var
: > var/install.log
start=$SECONDS
count=0
{ "$bin/pip" install --upgrade pip && "$bin/pip" install -e ".[dev]"; } 2>&1 \
  | tee -a var/install.log \
  | while IFS= read -r line; do
      case "$line" in
        Collecting*)
          count=$((count + 1))
          name=${line#Collecting }
          printf '  %3d  %-48s %4ss\n' "$count" "${name%% *}" $((SECONDS - start))
          ;;
        "Installing collected packages"*)
          echo "  installing the packages downloaded ($((SECONDS - start))s so far)…"
          ;;
        "Successfully installed"*)
          echo "  installed in $((SECONDS - start))s."
          ;;
      esac
    done
status=${PIPESTATUS[0]}
if [[ $status -ne 0 ]]; then
  echo "The install failed; the end of var/install.log:" >&2
  tail -n 30 var/install.log >&2
  exit 1
fi
