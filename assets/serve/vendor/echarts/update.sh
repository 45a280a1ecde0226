#!/usr/bin/env bash
# Re-fetches the chart library the dashboard embeds, from the npm registry, at the version
# pinned here, checks the package's integrity as npm published it, and copies the minified
# build and its licences beside this script. Run it only to change the version (then
# update VERSION and SHA256 below and rebuild); the build itself never fetches anything.
set -euo pipefail
VERSION=6.1.0
INTEGRITY='sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA=='
SHA256=b66b25aeb4df84e33199dc21694014d336d222cbd9deb0e5a7c14bd6aa0d0fd0
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack "echarts@$VERSION" >/dev/null
got="sha512-$(openssl dgst -sha512 -binary "echarts-$VERSION.tgz" | base64 -w0)"
[ "$got" = "$INTEGRITY" ] || { echo "echarts-$VERSION.tgz: integrity $got, expected $INTEGRITY" >&2; exit 1; }
tar xzf "echarts-$VERSION.tgz"
echo "$SHA256  package/dist/echarts.min.js" | sha256sum -c --quiet
cp package/dist/echarts.min.js package/LICENSE package/NOTICE "$here/"
cp package/licenses/LICENSE-d3 "$here/licenses/"
echo "echarts $VERSION in $here"
