#!/usr/bin/env bash
# The dashboard's answer times over HTTP: serves an output folder with the release binary
# and times each view under filters (first request, which opens the folder, then the median
# of five), a customer page and SQL counts; then the server's peak resident memory.
#
#   benches/serve.sh OUT_DIR            # e.g. after `bazaar scenarios/stress_10m.ron --no-report`
#
# Needs curl. Prints one line per request: seconds (first, median of 5) and what it was.
set -euo pipefail
dir="${1:?usage: benches/serve.sh OUT_DIR}"
bin="${BAZAAR:-target/release/bazaar}"
id="$(basename "$dir")"
log="$(mktemp)"
"$bin" serve --port 0 "$dir" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q 'serving on' "$log" && break; sleep 0.1; done
base="$(grep -o 'http://[^ ]*' "$log" | head -1)"
base="${base%/}"

meta="$(curl -sf "$base/api/f/$id/meta")"
first_day="$(printf '%s' "$meta" | python3 -c 'import json,sys; d=json.load(sys.stdin)["meta"]["days"]; print(d[0]["date"])')"
mid_day="$(printf '%s' "$meta" | python3 -c 'import json,sys; d=json.load(sys.stdin)["meta"]["days"]; print(d[len(d)//2]["date"])')"
persona="$(printf '%s' "$meta" | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta"]["personas"][0])')"
category="$(printf '%s' "$meta" | python3 -c 'import json,sys; print(json.load(sys.stdin)["meta"]["categories"][0])')"
event="$(printf '%s' "$meta" | python3 -c 'import json,sys; e=json.load(sys.stdin)["meta"]["events"]; print(e[0] if e else "")')"
customer="$(curl -sf -H 'content-type: application/json' -d '{"sql":"SELECT customer_id FROM transactions LIMIT 1"}' "$base/api/f/$id/sql" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"][0]["customer_id"])')"

time_get() { curl -s -o /dev/null -w '%{time_total}\n' "$@"; }
measure() {
  local what="$1"; shift
  local first rest
  first="$(time_get "$@")"
  rest="$(for _ in 1 2 3 4 5; do time_get "$@"; done | sort -n | sed -n 3p)"
  printf '%8.3f %8.3f  %s\n' "$first" "$rest" "$what"
}
echo "   first   median  request ($dir)"
filters="from=$first_day&to=$mid_day&persona=$persona&category=$category"
for view in overview daily heatmap mix baskets customers; do
  measure "$view (no filter)" "$base/api/f/$id/view/$view"
  measure "$view ($filters${event:+&event=$event})" "$base/api/f/$id/view/$view?$filters${event:+&event=$event}"
done
measure "customer $customer" "$base/api/f/$id/customer/$customer"
measure "SQL: COUNT(*) FROM transactions WHERE persona" -H 'content-type: application/json' \
  -d "{\"sql\":\"SELECT COUNT(*) AS n, SUM(total) AS revenue FROM transactions WHERE persona = '$persona'\"}" "$base/api/f/$id/sql"
measure "SQL: revenue by category from line_items" -H 'content-type: application/json' \
  -d '{"sql":"SELECT category, SUM(line_total) AS revenue FROM line_items GROUP BY category"}' "$base/api/f/$id/sql"
echo "peak resident memory of the server: $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' /proc/$pid/status)"
