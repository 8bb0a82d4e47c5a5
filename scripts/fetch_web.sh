#!/usr/bin/env bash
# Fetches the 3-D viewer of `voxelprompt serve` (@niivue/niivue, BSD-2-Clause) from the npm
# registry into ~/.cache/voxelprompt/web/ (or $1): its browser bundle dist/niivue.umd.js, its
# package.json (licence, version) and README. The server reads it from there at
# /vendor/niivue.js; without it the page shows the server-rendered PNG overlays instead.
set -euo pipefail
version=0.69.0
dest=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/voxelprompt/web}
command -v npm >/dev/null || { echo "npm is not installed: the page will use PNG overlays" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@niivue/niivue@$version" >/dev/null)
tar -xzf "$work/niivue-niivue-$version.tgz" -C "$work" package/dist/niivue.umd.js package/package.json package/README.md
mkdir -p "$dest"
cp "$work/package/dist/niivue.umd.js" "$dest/niivue.umd.js.tmp"
mv "$dest/niivue.umd.js.tmp" "$dest/niivue.umd.js"
cp "$work/package/package.json" "$dest/niivue.package.json"
cp "$work/package/README.md" "$dest/niivue.README.md"
echo "niivue $version ($(node -p "require('$dest/niivue.package.json').license" 2>/dev/null || echo BSD-2-Clause)) in $dest"
