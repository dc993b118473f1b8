#!/usr/bin/env bash
# Renders every docs/*.dot to a PNG beside it with Debian's graphviz (`dot`). Run after editing
# a .dot file and commit both; tests/integration/test_docs.sh checks they match.
#   scripts/render-diagrams.sh [OUTPUT_DIR]   (default: docs/)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs}
command -v dot >/dev/null || { echo "render-diagrams: dot not found (apt-get install graphviz)" >&2; exit 69; }
mkdir -p "$out"
for source in docs/*.dot; do
  png="$out/$(basename "${source%.dot}").png"
  dot -Tpng -Gdpi=110 "$source" -o "$png"
  echo "render-diagrams: $png"
done
