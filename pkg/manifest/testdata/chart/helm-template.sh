#!/usr/bin/env bash
# Regenerates each case's helm.yaml under testdata/chart/<version>/: what
# `helm template` of the official gitlab-agent chart of that version makes
# for the case's name, namespace and values. TestRenderMatchesChart compares
# our render with these files.
#
# Usage: helm-template.sh CHART   (CHART: an unpacked gitlab-agent chart,
#        2.6.2: `helm pull gitlab/gitlab-agent --version 2.6.2 --untar`;
#        2.15.0: GitHub ingeniouslycrazy/sandbox, helm/gitlab-agent/ at commit
#        57ff3e2647b6, with the ingress-nginx dependency removed from
#        Chart.yaml and charts/ deleted, as that subchart is off by default)
# Needs `helm` (v3) on PATH. The charts are not kept in this repository.
set -euo pipefail
chart=${1:?usage: $0 CHART_DIR}
version=$(sed -n 's/^version: //p' "$chart/Chart.yaml")
cd "$(dirname "$0")"
[ -d "$version" ] || { echo "no cases for chart version $version here" >&2; exit 1; }
for dir in "$version"/*/; do
  dir=${dir%/}
  [ -f "$dir/case.yaml" ] || continue
  name=$(sed -n 's/^name: //p' "$dir/case.yaml")
  ns=$(sed -n 's/^namespace: //p' "$dir/case.yaml")
  sets=()
  while read -r s; do [ -n "$s" ] && sets+=(--set "$s"); done < <(sed -n 's/^  - //p' "$dir/case.yaml")
  helm template "$name" "$chart" --namespace "$ns" -f "$dir/values.yaml" "${sets[@]}" > "$dir/helm.yaml"
  echo "$dir: $(grep -c '^kind:' "$dir/helm.yaml") objects"
done
