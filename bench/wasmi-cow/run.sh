#!/usr/bin/env bash
# Measures copy-on-write restores with wasmi 2.0.0 patched by wasmi-vouched-memory.patch
# (see README.md). Usage: bench/wasmi-cow/run.sh [criterion arguments]
set -euo pipefail
cd "$(dirname "$0")"
registry=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ | head -1)
if [ ! -d "$registry/wasmi-2.0.0" ]; then
    echo "wasmi 2.0.0 is not in the cargo registry: build fwasm first (cargo build)" >&2
    exit 1
fi
rm -rf target/patched && mkdir -p target/patched
cp -r "$registry/wasmi-2.0.0" "$registry/wasmi_core-2.0.0" target/patched/
patch -s -p1 -d target/patched < wasmi-vouched-memory.patch
cargo bench --bench restore -- "$@"
