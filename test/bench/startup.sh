#!/usr/bin/env bash
# Start-up and render speed, beside kubectl's, in one run on this machine.
#   test/bench/startup.sh [RUNS]        (default 10 runs each; prints medians)
# Uses bin/kubectl-gitlab_agent (make build) and kubectl from PATH. When helm
# and the gitlab-agent 2.6.2 chart are at hand (HELM_CHART=dir), also times
# `helm template` of the same defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-10}
plugin=bin/kubectl-gitlab_agent
[ -x "$plugin" ] || { echo "build first: make build" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "kubectl is not on PATH" >&2; exit 1; }

# median_ms CMD...: runs CMD $runs times (after one warm-up) and prints the
# median wall time in milliseconds.
median_ms() {
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
  local times=()
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s%N)
    times+=("$(( (end - start) / 1000 ))")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'
}

printf '%-52s %10s\n' "command (median of $runs runs)" "wall ms"
printf '%-52s %10s\n' "kubectl version --client" "$(median_ms kubectl version --client)"
printf '%-52s %10s\n' "kubectl-gitlab_agent version" "$(median_ms "$plugin" version)"
printf '%-52s %10s\n' "kubectl gitlab-agent version (plugin dispatch)" "$(PATH="$PWD/bin:$PATH" median_ms kubectl gitlab-agent version)"
printf '%-52s %10s\n' "kubectl-gitlab_agent render demo (defaults)" "$(median_ms "$plugin" render demo)"
if command -v helm >/dev/null && [ -n "${HELM_CHART:-}" ]; then
  printf '%-52s %10s\n' "helm template demo (chart 2.6.2, secretName set)" \
    "$(median_ms helm template demo "$HELM_CHART" --namespace gitlab-agent-demo --set config.secretName=demo-gitlab-agent-token)"
fi
