#!/bin/sh
# A soak: random backups, incrementals, restores, deletes, cleanups, cancels
# and kill -9 of the CLI from several processes at once, against a posix
# store + SQLite catalog and (when the loopback Swift's variables are set,
# `eval "$(scripts/swift-loopback.sh env)"`) a Swift container, with the
# invariants checked after each step (src/testing/soak/). CI runs 3 minutes
# of it (test/soak/soak.test.ts).
#   scripts/soak.sh [minutes] [--seed N] [--targets posix,swift] [--concurrency N]   (default 3 minutes, a random seed)
# Prints the seed (replay with --seed), then a summary line "soak: {...}" and
# the same as text. Exit 0: no violation; 20: violations (each printed with
# the seed and step); 2: bad arguments; 1: the soak itself failed.
set -eu
cd "$(dirname "$0")/.."
exec node dist/src/testing/soak/main.js "$@"
