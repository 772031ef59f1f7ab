#!/usr/bin/env bash
# How long `go test -short ./...` takes on this machine, from an empty build
# cache and from a warm one, beside the floor under it: building the plugin
# alone from an empty build cache. Each empty cache is a new temporary GOCACHE
# (the module cache is kept: nothing is downloaded). About 6 minutes on 2 cores.
#   test/bench/shorttier.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# seconds CMD...: runs CMD and prints its wall time in seconds; its output
# goes to $scratch/out (shown if it fails).
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@" >"$scratch/out" 2>&1 || { cat "$scratch/out" >&2; echo "failed: $*" >&2; return 1; }
  end=$(date +%s.%N)
  echo "$start $end" | awk '{printf "%.1f", $2 - $1}'
}

echo "$(nproc) cores, $(go version | cut -d' ' -f3)"
build=$(GOCACHE="$scratch/cache-build" seconds go build -o "$scratch/plugin" ./cmd/kubectl-gitlab_agent)
printf '%-58s %7s s\n' "go build of the plugin, empty build cache" "$build"
cold=$(GOCACHE="$scratch/cache-test" seconds go test -short -count=1 ./...)
printf '%-58s %7s s\n' "go test -short ./..., empty build cache" "$cold"
warm=$(GOCACHE="$scratch/cache-test" seconds go test -short -count=1 ./...)
printf '%-58s %7s s\n' "go test -short -count=1 ./..., warm build cache" "$warm"
