#!/usr/bin/env bash
# `poolc simulate` at scale: wall time and peak RSS of
#  1. 30 days of a 1,000-builds/hour trace for one pool (production/amd64),
#  2. one simulated day (the diurnal scenario) of the 1,000-pool synthetic
#     fleet, every service pool of every cluster.
# Targets: <= 2 s and <= 200 MB each. Usage: benches/simulate.sh POOLC OUT_DIR
set -euo pipefail
poolc=$1
out=$2
mkdir -p "$out"
trace="$out/trace-30d-1000h.csv"
python3 - "$trace" <<'PY'
import math, random, sys
rng = random.Random(1)
t, end = 0.0, 30 * 86400.0
with open(sys.argv[1], "w") as f:
    f.write("arrival,duration\n")
    while True:
        t += rng.expovariate(1000 / 3600)
        if t >= end:
            break
        # lognormal, median 8 min, p95 20 min
        d = 480 * math.exp(math.log(20 / 8) / 1.6448536 * rng.gauss(0, 1))
        f.write(f"{t:.3f},{d:.0f}\n")
PY
measure() {
  local name=$1 file=$2; shift 2
  /usr/bin/time -f "%e %U %M" -o "$out/$file.time" "$@" > "$out/$file.json"
  read -r wall user rss < "$out/$file.time"
  printf '| %s | %s s | %s s | %s MB |\n' "$name" "$wall" "$user" "$((rss / 1024))"
}
echo
echo "| simulate run | wall | user CPU | peak RSS |"
echo "|---|---|---|---|"
measure "30 days, 1000 builds/h, one pool" one-pool \
  "$poolc" simulate production/amd64 --specs specs --trace "$trace" --format json
# The fleet: every cluster in one run (`poolc simulate a,b,c`).
if [ ! -d "$out/fleet/specs" ]; then
  ./target/release/examples/synth_fleet "$out/fleet" 1000 20 1 > /dev/null
fi
clusters=$(sed -n 's/^  name: //p' "$out"/fleet/specs/*.yaml | paste -sd, -)
measure "1 day, 1000-pool fleet" fleet \
  "$poolc" simulate "$clusters" --specs "$out/fleet/specs" --scenario diurnal --format json
