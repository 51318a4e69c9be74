"""Runs the fleet benchmark and prints a Markdown table.

Every comparison is measured side by side in one run (hyperfine alternates
nothing, but runs both commands back to back with warmups), because shared
machines are noisy: ratios are what to trust, not absolute times.
"""

import json
import os
import platform
import re
import subprocess
import sys

out, poolc = sys.argv[1], sys.argv[2]


def hyperfine(name, commands, runs=10):
    path = os.path.join(out, f"{name}.json")
    args = ["hyperfine", "--warmup", "2", "--runs", str(runs), "--export-json", path, "-N"]
    # Exit codes are checked separately: lint may exit 1 on findings.
    args += ["-i"]
    subprocess.run(args + commands, check=True, stdout=subprocess.DEVNULL)
    with open(path) as f:
        return [r["median"] for r in json.load(f)["results"]]


def peak_rss_mb(command, runs=5):
    samples = []
    for _ in range(runs):
        r = subprocess.run(["/usr/bin/time", "-v"] + command, capture_output=True, text=True)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
        samples.append(int(m.group(1)) / 1024)
    samples.sort()
    return samples[len(samples) // 2]


def exit_code(command):
    return subprocess.run(command, capture_output=True).returncode


rows = []
gen = [poolc, "generate", "--specs", f"{out}/specs", "--out", f"{out}/generated"]
subprocess.run(gen, check=True, stdout=subprocess.DEVNULL)
(gen_s,) = hyperfine("generate", [" ".join(gen)])
rows.append(("`poolc generate`, 1,000 pools / 20 clusters, lint included", gen_s, peak_rss_mb(gen), None, None))

# A process that reads an empty rule file: start-up and catalog, the fixed
# cost that the per-rule figures leave out.
empty = os.path.join(out, "empty.yaml")
with open(empty, "w") as f:
    f.write("groups: []\n")
(startup_s,) = hyperfine("lint-empty", [f"{poolc} lint {empty}"])

per_rule = {}
for n in (1000, 10000, 100000):
    rules = f"{out}/rules-{n}"
    files = sorted(os.path.join(rules, f) for f in os.listdir(rules))
    lint = [poolc, "lint", rules]
    prom = ["promtool", "check", "rules"] + files
    # Short runs are the noisiest: more of them.
    runs = 30 if n <= 1000 else 10 if n <= 10000 else 5
    lint_s, prom_s = hyperfine(f"lint-{n}", [" ".join(lint), " ".join(prom)], runs)
    lint_rss, prom_rss = peak_rss_mb(lint, 3), peak_rss_mb(prom, 3)
    per_rule[n] = (lint_s - startup_s) / n
    rows.append((f"`poolc lint`, {n:,} rules (exit {exit_code(lint)})", lint_s, lint_rss, prom_s, prom_rss))

print(f"Machine: {platform.machine()}, {os.cpu_count()} cores; medians.\n")
print("| run | poolc wall | poolc peak RSS | promtool wall | promtool peak RSS | wall ratio | RSS ratio |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for name, s, rss, ps, prss in rows:
    if ps is None:
        print(f"| {name} | {s:.3f} s | {rss:.0f} MB | | | | |")
    else:
        print(f"| {name} | {s:.3f} s | {rss:.0f} MB | {ps:.3f} s | {prss:.0f} MB | {s / ps:.2f} | {rss / prss:.2f} |")
base = per_rule[1000]
print(f"\nStart-up (lint of an empty file): {startup_s * 1000:.1f} ms.")
print("Lint cost per rule beyond start-up: " + ", ".join(
    f"{n:,} rules: {per_rule[n] * 1e6:.1f} µs" for n in sorted(per_rule)))
print("Relative to 1,000 rules: " + ", ".join(
    f"{n:,}: {per_rule[n] / base:.2f}" for n in sorted(per_rule)))
