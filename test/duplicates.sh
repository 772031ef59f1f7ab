#!/usr/bin/env bash
# How many pairs the `duplicates` tool finds, counted three ways:
#   as it reads the tree;
#   with Go's import lines passed over, as the tool's README says it does:
#     it passes over `import "x"` lines but reads the lines of a grouped
#     `import ( ... )` block as code, so two files that import the same six
#     packages make a pair;
#   and with the generated completion scripts (completions/) left out too.
#   test/duplicates.sh [ROWS]      (default 60 rows each)
# Reads the working tree's tracked and untracked, not ignored files; changes
# nothing in it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v duplicates >/dev/null || { echo "the duplicates tool is not on PATH" >&2; exit 1; }
most=${1:-60}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

copy() { # copy DIR [PATHSPEC-EXCLUDE...]: the tree into DIR, grouped imports one a line
  local dir=$1; shift
  git ls-files -co --exclude-standard -- . "$@" | while read -r f; do
    [ -f "$f" ] || continue
    mkdir -p "$dir/$(dirname "$f")"
    case $f in
      *.go) awk '
        /^import \($/      { block = 1; next }
        block && /^\)$/    { block = 0; next }
        block && /^[ \t]*$/ { next }
        block              { sub(/^[ \t]+/, ""); print "import " $0; next }
                           { print }' "$f" >"$dir/$f" ;;
      *) cp "$f" "$dir/$f" ;;
    esac
  done
}

echo "== as the tool reads the tree"
duplicates --most "$most"
copy "$tmp/imports"
echo "== import lines passed over"
duplicates --repo "$tmp/imports" --most "$most"
copy "$tmp/generated" ':!completions'
echo "== import lines passed over, completions/ left out"
duplicates --repo "$tmp/generated" --most "$most"
