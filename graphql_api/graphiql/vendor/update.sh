#!/usr/bin/env bash
# Refreshes ../static from the versions pinned in package.json (and package-lock.json).
# To update GraphiQL: edit the versions in package.json, run `npm install --package-lock-only`
# here, then this script; check the page in a browser and run `make test` (the Chromium test
# drives it offline), and commit package.json, package-lock.json and ../static together.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
static="$here/../static"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$work/"
npm ci --prefix "$work" --no-audit --no-fund --ignore-scripts --silent
m="$work/node_modules"
copy() { install -m 0644 "$1" "$static/$2"; }
copy "$m/react/umd/react.production.min.js" react.production.min.js
copy "$m/react-dom/umd/react-dom.production.min.js" react-dom.production.min.js
copy "$m/graphiql/graphiql.min.js" graphiql.min.js
copy "$m/graphiql/graphiql.min.css" graphiql.min.css
copy "$m/@graphiql/plugin-explorer/dist/index.umd.js" plugin-explorer.umd.js
copy "$m/@graphiql/plugin-explorer/dist/style.css" plugin-explorer.css
copy "$m/graphql-ws/umd/graphql-ws.min.js" graphql-ws.min.js
# Licences of everything shipped, one file, with the exact versions.
{
  for pkg in react react-dom graphiql @graphiql/plugin-explorer graphql-ws; do
    version="$(node -p "require('$m/$pkg/package.json').version")"
    spdx="$(node -p "require('$m/$pkg/package.json').license")"
    printf '==== %s %s, licence %s\n\n' "$pkg" "$version" "$spdx"
    licence="$(find "$m/$pkg" -maxdepth 1 -iname 'licen[cs]e*' | head -n 1)"
    if [ -n "$licence" ]; then
      cat "$licence"
    else  # @graphiql/plugin-explorer ships none: it is part of the GraphiQL repository
      echo "(the package ships no licence text; it is published from the GraphiQL repository,"
      echo " whose MIT licence is the graphiql entry above)"
    fi
    printf '\n\n'
  done
} > "$static/THIRD_PARTY_LICENSES.txt"
echo "GraphiQL assets refreshed in $static"
