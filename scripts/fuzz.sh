#!/bin/sh
# Fuzzed documents and objects: runs the harness of test/driver/fuzz.test.ts
# (test/support/fuzzHarness.ts) for many cases. CI runs 300 of them.
#   scripts/fuzz.sh [cases] [seed]     (defaults: 10000 cases, seed 16)
# Prints a line "fuzz: {...}" with the figures; exits non-zero on any failure.
set -eu
cd "$(dirname "$0")/.."
FUZZ_CASES="${1:-10000}" FUZZ_SEED="${2:-16}" exec npx vitest run test/driver/fuzz.test.ts
