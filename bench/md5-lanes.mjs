// md5 throughput on many small objects: OpenSSL one by one against
// native/md5.c's md5Many with each kernel this CPU has (16, 8, 1 lanes), in
// jobs of 64 as a restore sends them. Usage: node bench/md5-lanes.mjs [objects]
import { createHash, randomFillSync } from "node:crypto"
import { createRequire } from "node:module"

const { md5Many, lanes } = createRequire(import.meta.url)("../native/build/Release/md5.node")
const count = Number(process.argv[2] ?? 400)
// 100-500 KB each, like a chain's incremental objects.
const objects = Array.from({ length: count }, (_, i) => randomFillSync(new Uint8Array(100_000 + ((i * 7919) % 400_000))))
const bytes = objects.reduce((sum, o) => sum + o.length, 0)

const best = (run) => {
  let fastest = Infinity
  for (let rep = 0; rep < 5; rep++) {
    const started = performance.now()
    run()
    fastest = Math.min(fastest, performance.now() - started)
  }
  return fastest
}
const report = (what, ms) => console.log(`${what.padEnd(24)} ${ms.toFixed(1).padStart(7)} ms  ${(bytes / 1e3 / ms).toFixed(0).padStart(5)} MB/s`)

console.log(`${count} objects, ${(bytes / 1e6).toFixed(0)} MB; widest kernel here: ${lanes} lane(s)`)
report("OpenSSL, one by one", best(() => objects.forEach((o) => createHash("md5").update(o).digest())))
for (const width of [16, 8, 1].filter((w) => w <= lanes)) {
  report(`md5Many, ${width} lane(s)`, best(() => { for (let i = 0; i < count; i += 64) md5Many(objects.slice(i, i + 64), width) }))
}
