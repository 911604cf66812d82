// A codec worker thread: md5 plus (de)compression of one object per message,
// with the same settings as src/codec/codec.ts. Plain JavaScript so that it
// runs the same from the TypeScript sources (tests) and from dist/ (CLI).
import { createHash, hash } from "node:crypto"
import { createRequire } from "node:module"
import { parentPort } from "node:worker_threads"
import * as zlib from "node:zlib"

const require = createRequire(import.meta.url)
const zstd = require("zstd-napi")
const bz2 = require("../native/build/Release/bz2.node")
// inflateInto always; deflate when built with libdeflate (native/zlib.c says why).
const nativeZlib = require("../native/build/Release/zlib.node")

const compressors = {
  zlib: nativeZlib.deflate === undefined ? async (data) => zlib.deflateSync(data, { level: 6 }) : async (data) => nativeZlib.deflate(data, 6),
  bz2: (data) => bz2.compress(data, 9),
  zstd: async (data) => zstd.compress(data, { compressionLevel: 3 })
}

const zstdBinding = require("zstd-napi/binding")

// Each writes the plain bytes into `target` (sized to the expected length,
// so a longer result fails) and returns how many it wrote.
const decompressors = {
  none: (data, target) => {
    if (data.length > target.length) throw new Error(`${data.length} bytes, more than the expected ${target.length}`)
    target.set(data)
    return data.length
  },
  zlib: (data, target) => nativeZlib.inflateInto(data, target),
  bz2: async (data, target) => {
    const plain = await bz2.decompress(data, target.length)
    target.set(plain)
    return plain.length
  },
  zstd: (data, target) => {
    // The frame header states its size; refuse before decompressing.
    const declared = zstdBinding.getFrameContentSize(data)
    if (declared !== null && declared > target.length) {
      throw new Error(`frame declares ${declared} bytes, more than the expected ${target.length}`)
    }
    return zstdBinding.decompress(target, data)
  }
}

const md5 = (data) => createHash("md5").update(data).digest("hex")

/** A view of the result that can be transferred back without copying. */
const transferable = (bytes) =>
  bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()

/** The hex SHA-256 of every `blockSize` block of `data` (the last may be short). */
const shaBlocks = (data, blockSize) => {
  const hashes = []
  for (let off = 0; off < data.length; off += blockSize) {
    hashes.push(hash("sha256", data.subarray(off, Math.min(off + blockSize, data.length)), "hex"))
  }
  return hashes
}

const isShared = (view) => view.buffer instanceof SharedArrayBuffer

// Shared data (a chunk slot) is worked on in place and never sent back.
parentPort.on("message", async ({ id, op, algorithm, data, expectedLength, blockSize, into }) => {
  try {
    if (op === "hash") {
      parentPort.postMessage({ id, hashes: shaBlocks(data, blockSize) })
    } else if (op === "compress") {
      const digest = md5(data)
      const compressed = algorithm === "none" || data.length === 0 ? data : transferable(await compressors[algorithm](data))
      // Cinder's rule: an object that does not shrink is stored raw, as "none".
      if (compressed.length >= data.length) {
        parentPort.postMessage({ id, md5: digest, raw: true, bytes: isShared(data) ? undefined : data }, isShared(data) ? [] : [data.buffer])
      } else {
        parentPort.postMessage({ id, md5: digest, raw: false, bytes: compressed }, [compressed.buffer])
      }
    } else {
      // Into the caller's slot when given one, else into a buffer sent back.
      const target = into === undefined ? new Uint8Array(expectedLength) : into.subarray(0, Math.min(into.length, expectedLength))
      const length = await decompressors[algorithm](data, target)
      const digest = md5(target.subarray(0, length))
      if (into !== undefined) {
        parentPort.postMessage({ id, md5: digest, length })
      } else {
        const bytes = length === target.length ? target : target.slice(0, length)
        parentPort.postMessage({ id, md5: digest, bytes }, [bytes.buffer])
      }
    }
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) })
  }
})
