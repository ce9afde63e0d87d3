#!/usr/bin/env bash
# Copy the browser libraries the web app serves from node_modules/ into the source tree.
#
# The copies under src/fleetup/web/static/vendor/ are committed, so a fresh clone (and CI)
# needs no npm. Run this after changing a version in package.json:
#     npm ci && scripts/vendor-web.sh
# Each library's LICENSE is copied beside it, and VERSIONS records what was vendored.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
modules="$root/node_modules"
vendor="$root/src/fleetup/web/static/vendor"

if [[ ! -d "$modules" ]]; then
    echo "node_modules/ is missing: run 'npm ci' first" >&2
    exit 1
fi

mkdir -p "$vendor"
copy() {  # package, file inside the package, name to give it
    local package="$1" source="$modules/$1/$2" target="$vendor/$3"
    if [[ ! -f "$source" ]]; then
        echo "$package: $2 not found; did the package change its layout?" >&2
        exit 1
    fi
    cp "$source" "$target"
    cp "$modules/$package/LICENSE" "$vendor/LICENSE.$package"
}

copy htmx.org dist/htmx.min.js htmx.min.js
copy mermaid dist/mermaid.min.js mermaid.min.js
copy signature_pad dist/signature_pad.umd.min.js signature_pad.umd.min.js

{
    echo "# Vendored by scripts/vendor-web.sh from the npm registry; do not edit by hand."
    for package in htmx.org mermaid signature_pad; do
        version="$(node -p "require('$modules/$package/package.json').version")"
        echo "$package $version"
    done
} > "$vendor/VERSIONS"

echo "vendored into ${vendor#"$root"/}:"
cat "$vendor/VERSIONS"
