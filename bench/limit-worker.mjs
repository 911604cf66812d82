/**
 * A machine-limit worker: pulls items off a shared counter and does exactly
 * the computation the item names, on bytes in shared memory (no I/O).
 *
 * Replies with the items it did and its own CPU time and run-queue wait
 * (from /proc/thread-self/schedstat) over the phase.
 *
 * item: { buf, off, len, ops, out?, raw? }
 *   buf   index into the phase's SharedArrayBuffers
 *   ops   any of "sha" (sha256 hex of every sha block), "md5" (md5 hex of the
 *         item), "deflate" (zlib level 6), "zstd" (level 3), "inflate" (then
 *         md5 of the output if "md5" is also given), "zstd-d"; "deflate-build"
 *         and "inflate-build" do the same with this build's zlib addon
 *         (native/zlib.c: libdeflate when built with it)
 *   out   keep the compressed output under this key (collected later, untimed)
 *   raw   decompressed length (inflate / zstd-d)
 */
import { createHash, hash as oneShot } from "node:crypto"
import { readFileSync } from "node:fs"
import { parentPort } from "node:worker_threads"
import { deflateSync, inflateSync } from "node:zlib"
import { compress as zstdCompress, decompress as zstdDecompress } from "zstd-napi"
import { createRequire } from "node:module"

const buildZlib = createRequire(import.meta.url)("../native/build/Release/zlib.node")
let scratch = new Uint8Array(0)
/** inflateInto a reused buffer, as the CLI inflates into a reused slot. */
const inflateBuild = (data, raw) => {
  if (scratch.length < raw) scratch = new Uint8Array(raw)
  return scratch.subarray(0, buildZlib.inflateInto(data, scratch.subarray(0, raw)))
}

const sha256Hex = typeof oneShot === "function" ? (data) => oneShot("sha256", data, "hex") : (data) => createHash("sha256").update(data).digest("hex")
const md5Hex = (data) => createHash("md5").update(data).digest("hex")

/** This thread's time on a CPU and time runnable but waiting for one (ns), from /proc/thread-self/schedstat. */
const schedstat = () => {
  try {
    const [run, wait] = readFileSync("/proc/thread-self/schedstat", "utf8").trim().split(/\s+/).map(Number)
    return { run, wait }
  } catch {
    return { run: NaN, wait: NaN }
  }
}

const kept = new Map()
let sink = 0 // keeps results alive

parentPort.on("message", (msg) => {
  if (msg.type === "collect") {
    const out = [...kept.entries()]
    kept.clear()
    parentPort.postMessage({ type: "collected", out })
    return
  }
  const { buffers, items, counter, shaBlock, zlibLevel, zstdLevel } = msg
  const views = buffers.map((b) => new Uint8Array(b))
  const next = new Int32Array(counter)
  const before = schedstat()
  let done = 0
  for (;;) {
    const i = Atomics.add(next, 0, 1)
    if (i >= items.length) break
    const item = items[i]
    let data = views[item.buf].subarray(item.off, item.off + item.len)
    const ops = item.ops
    if (ops.includes("inflate")) data = inflateSync(data)
    else if (ops.includes("inflate-build")) data = inflateBuild(data, item.raw)
    else if (ops.includes("zstd-d")) data = zstdDecompress(data)
    if (item.raw !== undefined && data.length !== item.raw) throw new Error(`item ${i}: ${data.length} bytes, expected ${item.raw}`)
    if (ops.includes("sha")) {
      for (let at = 0; at < data.length; at += shaBlock) sink ^= sha256Hex(data.subarray(at, Math.min(at + shaBlock, data.length))).charCodeAt(0)
    }
    if (ops.includes("md5")) sink ^= md5Hex(data).charCodeAt(0)
    let packed
    if (ops.includes("deflate")) packed = deflateSync(data, { level: zlibLevel })
    else if (ops.includes("deflate-build")) packed = (buildZlib.deflate ?? ((d, level) => deflateSync(d, { level })))(data, zlibLevel)
    else if (ops.includes("zstd")) packed = zstdCompress(data, { compressionLevel: zstdLevel })
    if (packed !== undefined) {
      sink ^= packed.length
      if (item.out !== undefined) kept.set(item.out, packed)
    }
    done++
  }
  const after = schedstat()
  parentPort.postMessage({ type: "done", done, sink, cpuSeconds: (after.run - before.run) / 1e9, waitSeconds: (after.wait - before.wait) / 1e9 })
})
