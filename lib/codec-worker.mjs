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

const compressors = {
  zlib: async (data) => zlib.deflateSync(data, { level: 6 }),
  bz2: (data) => bz2.compress(data, 9),
  zstd: async (data) => zstd.compress(data, { compressionLevel: 3 })
}

const decompressors = {
  // One output chunk of the known size: no Buffer.concat of 16 KiB pieces.
  zlib: async (data, expectedLength) =>
    zlib.inflateSync(data, { maxOutputLength: Math.max(expectedLength, 1), chunkSize: Math.max(64, expectedLength) }),
  bz2: (data, expectedLength) => bz2.decompress(data, expectedLength),
  zstd: async (data, expectedLength) => {
    const declared = require("zstd-napi/binding").getFrameContentSize(data)
    if (declared !== null && declared > expectedLength) {
      throw new Error(`frame declares ${declared} bytes, more than the expected ${expectedLength}`)
    }
    return zstd.decompress(data)
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

parentPort.on("message", async ({ id, op, algorithm, data, expectedLength, blockSize }) => {
  try {
    if (op === "hash") {
      // The chunk goes back with its hashes: the caller cuts it into objects.
      parentPort.postMessage({ id, hashes: shaBlocks(data, blockSize), bytes: data }, [data.buffer])
    } else if (op === "compress") {
      const digest = md5(data)
      const compressed = algorithm === "none" || data.length === 0 ? data : transferable(await compressors[algorithm](data))
      // Cinder's rule: an object that does not shrink is stored raw, as "none".
      const bytes = compressed.length >= data.length ? data : compressed
      // The input goes back too, so the caller can reuse its buffer.
      const transfer = bytes === data ? [data.buffer] : [bytes.buffer, data.buffer]
      parentPort.postMessage({ id, md5: digest, bytes, raw: bytes === data, input: data }, transfer)
    } else {
      const plain = algorithm === "none" ? data : transferable(await decompressors[algorithm](data, expectedLength))
      parentPort.postMessage({ id, md5: md5(plain), bytes: plain }, [plain.buffer])
    }
  } catch (error) {
    parentPort.postMessage({ id, error: error instanceof Error ? error.message : String(error) })
  }
})
