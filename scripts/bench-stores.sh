#!/usr/bin/env bash
# Backup and restore times of one volume through the posix, Swift and S3
# stores, in the same run, with the CLI (bin/chunked-backup, the built dist/).
# Swift and S3 are the loopback Swift of scripts/swift-loopback.sh (started
# here when it is not running; stopped again then).
#
#   npm run build && scripts/bench-stores.sh [SIZE_MIB] [COMPRESSION...]
#
# Default: 1024 MiB, compression none and zstd. The volume is one third
# random bytes, one third zeros and one third repeated text (deterministic).
# Each restore goes into a new file and is compared with the volume.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
shift || true
compressions=("${@:-none}")
[ $# -eq 0 ] && compressions=(none zstd)

work=$(mktemp -d /tmp/cb-bench-stores.XXXXXX)
started_swift=0
cleanup() {
  rm -rf "$work"
  if [ "$started_swift" = 1 ]; then scripts/swift-loopback.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

status=$(scripts/swift-loopback.sh status)
if ! grep -q "^proxy: running" <<<"$status"; then
  scripts/swift-loopback.sh start
  started_swift=1
fi
eval "$(scripts/swift-loopback.sh env)"

volume="$work/volume.img"
node -e '
  const fs = require("fs"); const [path, mib] = [process.argv[1], Number(process.argv[2])]
  const total = mib * 1024 * 1024, third = Math.floor(total / 3 / 65536) * 65536
  const fd = fs.openSync(path, "w"); const block = Buffer.alloc(1 << 20)
  let x = 2463534242
  for (let done = 0; done < third; done += block.length) {
    for (let i = 0; i < block.length; i += 4) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; block.writeUInt32LE(x, i) }
    fs.writeSync(fd, block, 0, Math.min(block.length, third - done))
  }
  const text = Buffer.from("chunked-backup benchmark: a line of text that compresses well. ".repeat(16384)).subarray(0, 1 << 20)
  for (let done = 2 * third; done < total; done += text.length) fs.writeSync(fd, text, 0, Math.min(text.length, total - done), done)
  fs.ftruncateSync(fd, total); fs.closeSync(fd)
' "$volume" "$size_mib"
want=$(sha256sum <"$volume" | cut -d' ' -f1)

export SWIFT_USER=$SWIFT_LOOPBACK_USER SWIFT_KEY=$SWIFT_LOOPBACK_KEY
export AWS_ACCESS_KEY_ID=$SWIFT_LOOPBACK_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SWIFT_LOOPBACK_S3_SECRET_KEY
stamp=$(date +%s)
declare -A stores=(
  [posix]="posix:$work/posix-store"
  [swift]="swift+http://${SWIFT_LOOPBACK_AUTH_URL#http://}?container=bench-swift-$stamp"
  [s3]="s3://bench-s3-$stamp?endpoint=$SWIFT_LOOPBACK_S3_ENDPOINT&region=$SWIFT_LOOPBACK_S3_REGION&path-style=true"
)

seconds() { local t0=$1; echo "scale=1; ($(date +%s%N) - $t0) / 1000000000" | bc; }
printf '%-6s %-11s %10s %10s %12s %12s\n' store compression "backup s" "restore s" "backup MB/s" "restore MB/s"
for compression in "${compressions[@]}"; do
  for store in posix swift s3; do
    repo="$work/repo-$store-$compression"
    args=(--repo "$repo" --store "${stores[$store]}" --json)
    sync
    t0=$(date +%s%N)
    id=$(bin/chunked-backup "${args[@]}" backup "$volume" --compression "$compression" 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).id))')
    backup_s=$(seconds "$t0")
    t0=$(date +%s%N)
    bin/chunked-backup "${args[@]}" restore "$id" "$work/restored.img" --new >/dev/null 2>&1
    restore_s=$(seconds "$t0")
    got=$(sha256sum <"$work/restored.img" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "MISMATCH: $store $compression restore differs" >&2; exit 1; }
    rm -f "$work/restored.img"
    bin/chunked-backup "${args[@]}" delete "$id" >/dev/null 2>&1 || true
    mb=$(echo "$size_mib * 1.048576" | bc)
    printf '%-6s %-11s %10s %10s %12.0f %12.0f\n' "$store" "$compression" "$backup_s" "$restore_s" \
      "$(echo "$mb / $backup_s" | bc -l)" "$(echo "$mb / $restore_s" | bc -l)"
  done
done
