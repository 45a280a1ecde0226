#!/usr/bin/env bash
# Whole-run scaling measurements for BENCHMARKS.md: wall time, throughput, peak memory and
# resident bytes per customer, for the stress scenarios at several sizes and thread counts.
#
#   benches/scale.sh            # 10k, 100k, 1M and 10M customers x 30 days, Parquet
#   benches/scale.sh big        # also 100M customers x 7 days (needs about 23 GB)
#   benches/scale.sh parity     # the seed-parity workload only
#   benches/scale.sh timings    # 10M x 30 days at 1 and 2 threads, Parquet and CSV, each
#                               # with where its time went (--timings, benches/timings.py)
#   benches/scale.sh mpi [SCENARIO]
#                               # one run sharded over MPI ranks (docs/scale.md): 1M x 30
#                               # days (or SCENARIO) as one process and on 1, 2 and 4 ranks
#                               # on loopback; wall, each rank's peak memory, the bytes each
#                               # rank sent to collectives per simulated hour, output size
#
# Each run writes to a temporary folder that is removed afterwards. Peak memory is the
# kernel's maximum resident set (GNU time's %M).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = mpi ]; then
  cargo build --release --quiet --features mpi
else
  cargo build --release --quiet
fi
bin=target/release/bazaar
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

printf '| %-11s | %4s | %7s | %7s | %8s | %15s | %12s | %13s | %9s | %9s |\n' \
  customers days threads format wall "customer-hours/s" "transactions" "transactions/s" "peak RSS" "B/customer"
echo '|------------:|-----:|--------:|--------:|---------:|-----------------:|-------------:|--------------:|----------:|-----------:|'

# run SCENARIO THREADS FORMAT [extra args...]
run() {
  local scenario=$1 threads=$2 format=$3
  shift 3
  rm -rf "$out/run"
  /usr/bin/time -f '%e %M' -o "$out/time" \
    "$bin" run "$scenario" --threads "$threads" --format "$format" --no-report \
    --out "$out/run" "$@" >"$out/stdout" 2>"$out/stderr"
  local wall peak_kib customers days tx per
  read -r wall peak_kib <"$out/time"
  customers=$(grep -oE '^[a-z_0-9]+: [0-9,]+ customers' "$out/stdout" | grep -oE '[0-9,]+ customers' | tr -d ', customers')
  days=$(grep -oE 'customers, [0-9]+ days' "$out/stdout" | grep -oE '[0-9]+ days' | tr -d ' days')
  tx=$(grep -oE '^  [0-9,]+ transactions' "$out/stdout" | tr -d ', transactions')
  per=$(grep -oE '[0-9]+ bytes per customer' "$out/stdout" | grep -oE '^[0-9]+')
  awk -v c="$customers" -v d="$days" -v t="$threads" -v f="$format" -v w="$wall" \
      -v tx="$tx" -v m="$peak_kib" -v p="$per" 'BEGIN {
    printf "| %11d | %4d | %7d | %7s | %6.2f s | %13.1fM | %12d | %12.2fM | %5d MiB | %9d |\n",
      c, d, t, f, w, c * d * 24 / w / 1e6, tx, tx / w / 1e6, m / 1024, p
  }'
}

# sharded SCENARIO RANKS THREADS: RANKS=0 runs one process without mpirun.
sharded() {
  local scenario=$1 ranks=$2 threads=$3
  rm -rf "$out/run" "$out"/rank.* "$out/log"
  local cmd=(sh -c 'exec /usr/bin/time -f "%M" -o "$0/rank.${OMPI_COMM_WORLD_RANK:-0}" "$@"' "$out"
    "$bin" run "$scenario" --threads "$threads" --format parquet --no-report --quiet --out "$out/run")
  local start end
  start=$(date +%s.%N)
  if [ "$ranks" = 0 ]; then
    RUST_LOG=bazaar=info "${cmd[@]}" 2>"$out/log"
  else
    RUST_LOG=bazaar=info OMPI_MCA_btl_vader_single_copy_mechanism=none \
      mpirun --allow-run-as-root --oversubscribe --bind-to none -n "$ranks" "${cmd[@]}" 2>"$out/log"
  fi
  end=$(date +%s.%N)
  local days peaks sent bytes
  days=$(grep -oE '"days": [0-9]+' "$out/run/summary.json" | head -1 | grep -oE '[0-9]+$')
  peaks=$(cat "$out"/rank.* | awk '{ printf "%s%d", (NR > 1 ? "/" : ""), $1 / 1024 }')
  sent=$(sed 's/\x1b\[[0-9;]*m//g' "$out/log" | grep 'collectives: bytes sent' | grep -oE 'bytes=[0-9]+' | grep -oE '[0-9]+' | sort -n | tail -1 || true)
  bytes=$(du -sb "$out/run" | cut -f1)
  awk -v r="$ranks" -v t="$threads" -v s="$start" -v e="$end" -v p="$peaks" -v b="${sent:-0}" \
      -v d="$days" -v o="$bytes" 'BEGIN {
    printf "| %5s | %7d | %7.2f s | %-23s | %10.0f | %9.1f MB |\n",
      (r == 0 ? "none" : r), t, e - s, p " MiB", b / (d * 24), o / d / 1e6
  }'
}

case "${1:-}" in
  mpi)
    scenario=${2:-scenarios/stress_1m.ron}
    echo "$scenario"
    printf '| %5s | %7s | %9s | %-23s | %10s | %12s |\n' ranks threads wall "peak RSS by rank" "B/hour/rank" "output/day"
    echo '|------:|--------:|----------:|-------------------------|-----------:|-------------:|'
    sharded "$scenario" 0 2
    sharded "$scenario" 1 2
    sharded "$scenario" 2 1
    sharded "$scenario" 4 1
    ;;
  timings)
    for spec in "2 parquet" "1 parquet" "2 csv"; do
      read -r threads format <<<"$spec"
      run scenarios/stress_10m.ron "$threads" "$format" --timings
      echo
      python3 benches/timings.py "$out/run/timings.json"
      echo
    done
    ;;
  parity)
    run scenarios/seed_parity.ron 2 csv --days 30 --scale 10
    ;;
  *)
    run scenarios/stress_1m.ron 2 parquet --scale 0.01
    run scenarios/stress_1m.ron 2 parquet --scale 0.1
    run scenarios/stress_1m.ron 2 parquet
    run scenarios/stress_1m.ron 1 parquet
    run scenarios/stress_1m.ron 2 csv
    run scenarios/stress_10m.ron 2 parquet
    if [ "${1:-}" = big ]; then
      run scenarios/stress_10m.ron 2 parquet --scale 10 --days 7
    fi
    ;;
esac
