#!/usr/bin/env bash
# The whole test suite: unit tests, stage harness with fakes, real-model conformance and
# end-to-end tests on the default pack. Same profile as the build, so nothing compiles twice.
source "$(dirname "$0")/common.sh"
setup
# The multilingual model for the language-detection tests (not part of the default pack).
"$IRIS" models pull whisper-base
say "running the test suite"
cargo test --release --locked --workspace "$@"
