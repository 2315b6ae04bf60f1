#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the end-to-end tests need, then runs
# unit tests, the integration tests (mock cluster and a real tansu broker process) and checks
# that the benchmarks build. The tests start their own brokers on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v tansu >/dev/null 2>&1; then
    echo "test.sh: installing the tansu Kafka-compatible broker (once per machine, about 8 minutes)" >&2
    cargo install tansu --locked --features dynostore
fi
export AUDITWATCH_TANSU="$(command -v tansu)"

cargo test --locked
cargo test --locked --benches --no-run
