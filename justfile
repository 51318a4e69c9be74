# poolc tasks. `just` lists them.

default:
    @just --list

# Compile specs/ into generated/ (nothing is written if anything fails).
generate:
    cargo run --quiet --release -- generate

# Exit 1 with a diff if generated/ is not what `generate` would write.
check:
    cargo run --quiet --release -- check

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

# What CI runs, on this machine.
ci:
    bash .ci/run
