#!/usr/bin/env bash
# Regenerates each case's helm.yaml: what `helm template` of the official
# gitlab-agent chart 2.6.2 makes for the case's name, namespace and values.
# TestRenderMatchesChart compares our render with these files.
#
# Usage: helm-template.sh CHART   (CHART: the unpacked gitlab-agent-2.6.2 chart,
#        e.g. from `helm pull gitlab/gitlab-agent --version 2.6.2 --untar`)
# Needs `helm` (v3) on PATH. The chart itself is not kept in this repository.
set -euo pipefail
chart=${1:?usage: $0 CHART_DIR}
grep -q '^version: 2.6.2$' "$chart/Chart.yaml" || { echo "$chart is not gitlab-agent 2.6.2" >&2; exit 1; }
cd "$(dirname "$0")"
for dir in */; do
  dir=${dir%/}
  [ -f "$dir/case.yaml" ] || continue
  name=$(sed -n 's/^name: //p' "$dir/case.yaml")
  ns=$(sed -n 's/^namespace: //p' "$dir/case.yaml")
  sets=()
  while read -r s; do [ -n "$s" ] && sets+=(--set "$s"); done < <(sed -n 's/^  - //p' "$dir/case.yaml")
  helm template "$name" "$chart" --namespace "$ns" -f "$dir/values.yaml" "${sets[@]}" > "$dir/helm.yaml"
  echo "$dir: $(grep -c '^kind:' "$dir/helm.yaml") objects"
done
