#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the end-to-end tests need, then runs
# unit tests, the integration tests (mock cluster, a real tansu broker process, a real SMTP
# server and real HTTP receivers) and checks that the benchmarks build. The tests start their
# own brokers and peers on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v tansu >/dev/null 2>&1; then
    echo "test.sh: installing the tansu Kafka-compatible broker (once per machine, about 8 minutes)" >&2
    cargo install tansu --locked --features dynostore
fi
export AUDITWATCH_TANSU="$(command -v tansu)"

# The Python peers (SMTP server, webhook receiver, Parquet readers) in a venv of their own,
# rebuilt when tests/peers/requirements.txt changes.
venv="${CARGO_TARGET_DIR:-target}/peers-venv"
if ! cmp -s tests/peers/requirements.txt "$venv/requirements.txt"; then
    echo "test.sh: installing the Python test peers into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/peers/requirements.txt
    cp tests/peers/requirements.txt "$venv/requirements.txt"
fi
export AUDITWATCH_PYTHON="$(cd "$venv/bin" && pwd)/python"

cargo test --locked
cargo test --locked --benches --no-run
