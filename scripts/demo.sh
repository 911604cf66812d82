#!/usr/bin/env bash
# A real backup and restore on the embedded default (posix store + SQLite
# catalog in ./demo-repo): full backup, a change, an incremental, a restore
# into a new file, and a checksum comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
cli=bin/chunked-backup
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CHUNKED_BACKUP_REPO="$work/repo"

echo "== making a 256 MiB demo volume: text, random data and zeros"
volume="$work/volume.img"
truncate -s 256M "$volume"
find /usr/share/doc -type f -name '*.gz' -print0 2>/dev/null | head -z -n 400 | xargs -0 cat 2>/dev/null \
  | dd of="$volume" conv=notrunc bs=1M count=60 iflag=fullblock status=none || true
head -c 40M /dev/urandom | dd of="$volume" bs=1M seek=100 conv=notrunc status=none

echo "== full backup"
full=$($cli backup "$volume" --name demo-full)
echo "backup id: $full"

echo "== changing 3 scattered MiB of the volume"
for at in 10 130 200; do head -c 1M /dev/urandom | dd of="$volume" bs=1M seek=$at conv=notrunc status=none; done

echo "== incremental backup"
incr=$($cli backup "$volume" --incremental --name demo-incremental)
echo "backup id: $incr"

$cli list

echo "== restoring the incremental into a new file"
$cli restore "$incr" "$work/restored.img" --new

want=$(sha256sum < "$volume" | cut -d' ' -f1)
got=$(sha256sum < "$work/restored.img" | cut -d' ' -f1)
echo "volume:   $want"
echo "restored: $got"
if [ "$want" = "$got" ]; then echo "OK: the restore matches the volume"; else echo "MISMATCH" >&2; exit 1; fi
