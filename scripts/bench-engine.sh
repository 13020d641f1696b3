#!/usr/bin/env bash
# The engine benchmark with its "before" column: builds the `pss` command as it was before
# the engine process (commit 739edcc, the tracer a thread of the caller) into
# target/bench-before/, then runs `cargo bench --bench engine`, which captures the same
# targets with both, interleaved (docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
before=739edcc
dir=target/bench-before
if [ ! -x "$dir/target/release/pss" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  git archive "$before" | tar -x -C "$dir"
  (cd "$dir" && cargo build --release -p pss-cli)
fi
PSS_BEFORE="$PWD/$dir/target/release/pss" cargo bench -p pss-testbed --bench engine -- "$@"
