/**
 * The SHA-256 digests of a volume's sha blocks, kept as bytes, 32 per block,
 * in the per-chunk buffers the workers return: an 8 GiB volume's list is
 * 8 MB, where hex strings took ~21 MB of heap until the end of the backup.
 */
import { nativeHex } from "../codec/native.js"
export const DIGEST_BYTES = 32

export interface DigestList {
  readonly count: () => number
  /** Sets part `index`'s digests (a multiple of 32 bytes; parts may come in any order). */
  readonly set: (index: number, digests: Uint8Array) => void
  /** The hex digest of block `index`, as the sha256 file lists it. */
  readonly hexAt: (index: number) => string
  /** Writes the whole list as the sha256 file's items at `out[at]` (encodeSha256File's `writeItems`), making no string. */
  readonly writeItems: (out: Buffer, at: number) => number
}

/** Parts of `blocksPerChunk` digests each, but for the last one; all are set before the list is read. */
export const makeDigestList = (blocksPerChunk: number): DigestList => {
  const parts: Array<Buffer> = []
  let count = 0
  let hexPart = -1
  let partHex = ""
  return {
    count: () => count,
    set: (index, digests) => {
      count += digests.byteLength / DIGEST_BYTES - (parts[index] === undefined ? 0 : parts[index]!.byteLength / DIGEST_BYTES)
      parts[index] = Buffer.from(digests.buffer, digests.byteOffset, digests.byteLength)
    },
    hexAt: (index) => {
      const part = Math.floor(index / blocksPerChunk)
      const offset = (index - part * blocksPerChunk) * DIGEST_BYTES * 2
      // Read in order (the sha256 file): one hex conversion per part, then slices of it.
      if (part !== hexPart) {
        hexPart = part
        partHex = parts[part]!.toString("hex")
      }
      return partHex.slice(offset, offset + DIGEST_BYTES * 2)
    },
    writeItems: (out, at) => {
      const hex = nativeHex()
      const start = at
      for (const part of parts) at = hex.writeHexItems(part, out, at, at === start)
      return at
    }
  }
}

/** True when digest `index` of `a` and digest `other` of `b` are the same 32 bytes. */
export const sameDigest = (a: Uint8Array, index: number, b: Uint8Array, other: number): boolean => {
  const x = index * DIGEST_BYTES
  const y = other * DIGEST_BYTES
  for (let k = 0; k < DIGEST_BYTES; k++) if (a[x + k] !== b[y + k]) return false
  return true
}
