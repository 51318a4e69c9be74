# poolc tasks. `just` lists them.

default:
    @just --list

# The poolc to run: an installed binary when POOLC names one (CI), else a
# release build of this checkout.
poolc := env_var_or_default("POOLC", "cargo run --quiet --release --")

# Compile specs/ into generated/ (nothing is written if anything fails).
generate:
    {{poolc}} generate

# Exit 1 with a diff if generated/ is not what `generate` would write.
check:
    {{poolc}} check

# The whole test suite (real promtool, haproxy and kubectl where installed).
test:
    cargo test

# Review and accept changed snapshots (needs `cargo install cargo-insta`).
review:
    cargo insta review

fmt:
    cargo fmt --all

clippy:
    cargo clippy --all-targets -- -D warnings

# The PromQL gate over everything generated.
lint:
    {{poolc}} lint generated/

# What CI runs, on this machine.
ci:
    bash .ci/run

# Benchmark at fleet scale against promtool, side by side (installs hyperfine
# and promtool from Debian if missing). Prints a Markdown table; the raw
# hyperfine JSON lands in target/bench/. Then `poolc simulate`: 30 days of a
# 1,000-builds/hour trace and one day of the 1,000-pool fleet (wall, RSS).
bench:
    #!/usr/bin/env bash
    set -euo pipefail
    need=()
    command -v hyperfine >/dev/null || need+=(hyperfine)
    command -v promtool >/dev/null || need+=(prometheus)
    [ -x /usr/bin/time ] || need+=(time)
    if [ ${#need[@]} -gt 0 ]; then
      echo "installing ${need[*]} (Debian packages)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    cargo build --quiet --release --example synth_fleet
    cargo build --quiet --release
    out=target/bench
    rm -rf "$out" && mkdir -p "$out"
    ./target/release/examples/synth_fleet "$out" 1000 20 1000 10000 100000
    poolc=./target/release/poolc
    python3 benches/report.py "$out" "$poolc"
    benches/simulate.sh "$poolc" "$out/simulate"

# Fuzz every target for SECONDS each (default 60): spec loading, rule files,
# dashboards and single PromQL expressions. Needs cargo-fuzz (installed if
# missing); RUSTC_BOOTSTRAP=1 lets the stable toolchain take the sanitizer
# flags it passes. New inputs go to fuzz/corpus/, crashes to fuzz/artifacts/.
fuzz seconds="60":
    #!/usr/bin/env bash
    set -euo pipefail
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    export RUSTC_BOOTSTRAP=1
    for target in $(cargo fuzz list); do
      echo "fuzzing $target for {{seconds}}s"
      mkdir -p "fuzz/corpus/$target"
      cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time={{seconds}} -timeout=10 -rss_limit_mb=2048 -max_len=65536
    done

# Regenerate the metric catalog (src/catalog/data/*.tsv) from git clones of
# the upstream projects under CLONES_DIR, every release tag of each. Running it
# again over the same clones changes nothing.
catalog-refresh CLONES_DIR:
    cargo run --quiet --release --example catalog_refresh -- {{CLONES_DIR}} src/catalog/data
