/**
 * The SHA-256 digests of a volume's sha blocks, kept as bytes, 32 per block,
 * in the per-chunk buffers the workers return: an 8 GiB volume's list is
 * 8 MB, where hex strings took ~21 MB of heap until the end of the backup.
 */
export const DIGEST_BYTES = 32

export interface DigestList {
  readonly count: () => number
  /** Appends a chunk's digests (a multiple of 32 bytes). */
  readonly push: (digests: Uint8Array) => void
  /** The hex digest of block `index`, as the sha256 file lists it. */
  readonly hexAt: (index: number) => string
}

/** Parts of `blocksPerChunk` digests each, but for the last chunk's. */
export const makeDigestList = (blocksPerChunk: number): DigestList => {
  const parts: Array<Buffer> = []
  let count = 0
  return {
    count: () => count,
    push: (digests) => {
      parts.push(Buffer.from(digests.buffer, digests.byteOffset, digests.byteLength))
      count += digests.byteLength / DIGEST_BYTES
    },
    hexAt: (index) => {
      const part = Math.floor(index / blocksPerChunk)
      const offset = (index - part * blocksPerChunk) * DIGEST_BYTES
      return parts[part]!.toString("hex", offset, offset + DIGEST_BYTES)
    }
  }
}
