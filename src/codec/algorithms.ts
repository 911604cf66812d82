/**
 * The compression algorithms with the exact settings of the Python modules
 * Cinder calls, in the one place both the codec workers and the main thread
 * take them from: zlib level 6 (an RFC 1950 stream, also for "gzip"), bz2
 * level 9, zstd level 3 with the content size in the frame header
 * (python-zstd cannot read frames without it), and Cinder's rule that an
 * object compression does not shrink is stored raw.
 */
import { createRequire } from "node:module"
import * as zlib from "node:zlib"
import type * as ZstdBinding from "zstd-napi/binding.js"
import type { Algorithm } from "../domain/compression.js"
import { bz2, nativeZlib } from "./native.js"

export const ZLIB_LEVEL = 6
export const BZ2_LEVEL = 9
export const ZSTD_LEVEL = 3

// A CommonJS module whose exports Node's ESM loader cannot name statically.
const zstd = createRequire(import.meta.url)("zstd-napi/binding") as typeof ZstdBinding

/** Shared memory through which another thread stops long work and sees how far it got (native/bz2.c). */
export interface WorkCounters {
  /** set non-zero to make bzip2 give up at its next step */
  readonly stop: Int32Array
  /** volume bytes worked through, added to as bzip2 steps */
  readonly done: BigInt64Array
}

/** Cinder's `_prepare_output_data`: compressed bytes that are not smaller are not worth keeping. */
export const keepsRaw = (compressed: Uint8Array, data: Uint8Array) => compressed.length >= data.length

// zstd into one reused buffer per thread, then an exact copy: zstd-napi's
// compress() allocates a fresh compressBound-sized (~chunk) buffer per call,
// which lingered until the thread's next GC and made peak RSS wander.
let zstdContext: InstanceType<typeof zstd.CCtx> | undefined
let zstdScratch = new Uint8Array(0)
const zstdCompress = (data: Uint8Array): Uint8Array => {
  zstdContext ??= new zstd.CCtx()
  const bound = zstd.compressBound(data.length)
  if (zstdScratch.length < bound) zstdScratch = new Uint8Array(bound)
  // The context's defaults keep the content size flag on.
  return new Uint8Array(zstdScratch.subarray(0, zstdContext.compress(zstdScratch, data, ZSTD_LEVEL)))
}

/** `data` compressed by `algorithm` (not "none"); the caller applies `keepsRaw`. */
export const compressBytes = async (algorithm: Exclude<Algorithm, "none">, data: Uint8Array, counters?: WorkCounters): Promise<Uint8Array> => {
  switch (algorithm) {
    case "zlib": {
      const { deflate } = nativeZlib()
      return deflate !== undefined ? deflate(data, ZLIB_LEVEL) : zlib.deflateSync(data, { level: ZLIB_LEVEL })
    }
    case "bz2":
      // The addon takes the counters only as typed arrays, not as undefined.
      return counters === undefined ? bz2().compress(data, BZ2_LEVEL) : bz2().compress(data, BZ2_LEVEL, counters.stop, counters.done)
    case "zstd":
      return zstdCompress(data)
  }
}

/**
 * Decompresses `data` into `target`, which is sized to the expected length:
 * output that would not fit fails instead of growing. Returns the length.
 */
export const decompressInto = async (algorithm: Algorithm, data: Uint8Array, target: Uint8Array, counters?: WorkCounters): Promise<number> => {
  switch (algorithm) {
    case "none":
      if (data.length > target.length) throw new Error(`${data.length} bytes, more than the expected ${target.length}`)
      target.set(data)
      return data.length
    case "zlib":
      return nativeZlib().inflateInto(data, target)
    case "bz2": {
      const plain = await (counters === undefined
        ? bz2().decompress(data, target.length)
        : bz2().decompress(data, target.length, counters.stop, counters.done))
      target.set(plain)
      return plain.length
    }
    case "zstd": {
      // The frame header states its size; refuse before decompressing.
      const declared = zstd.getFrameContentSize(data)
      if (declared !== null && declared > target.length) {
        throw new Error(`frame declares ${declared} bytes, more than the expected ${target.length}`)
      }
      return zstd.decompress(target, data)
    }
  }
}
