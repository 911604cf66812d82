/**
 * The SHA-256 digests of a volume's sha blocks, kept as bytes, 32 per block,
 * in the per-chunk buffers the workers return: an 8 GiB volume's list is
 * 8 MB, where hex strings took ~21 MB of heap until the end of the backup.
 */
export const DIGEST_BYTES = 32

export interface DigestList {
  readonly count: () => number
  /**
   * Appends a chunk's digests (a multiple of 32 bytes). Blocks marked in
   * `inherited` (one byte per block, non-zero) are the parent's: their
   * digests are the parent's hex, kept as it is (no bytes for them).
   */
  readonly push: (digests: Uint8Array, inherited?: Uint8Array) => void
  /** The hex digest of block `index`, as the sha256 file lists it. */
  readonly hexAt: (index: number) => string
  /** True when block `index` is the parent's (it was not read). */
  readonly inherits: (index: number) => boolean
}

/** Parts of `blocksPerChunk` digests each, but for the last chunk's; `parentHashes` for inherited blocks. */
export const makeDigestList = (blocksPerChunk: number, parentHashes: ReadonlyArray<string> = []): DigestList => {
  const parts: Array<Buffer> = []
  const inheritedParts: Array<Uint8Array | undefined> = []
  let count = 0
  let hexPart = -1
  let partHex = ""
  const inherits = (index: number) => {
    const part = Math.floor(index / blocksPerChunk)
    return inheritedParts[part]?.[index - part * blocksPerChunk] ? true : false
  }
  return {
    count: () => count,
    push: (digests, inherited) => {
      parts.push(Buffer.from(digests.buffer, digests.byteOffset, digests.byteLength))
      inheritedParts.push(inherited)
      count += digests.byteLength / DIGEST_BYTES
    },
    hexAt: (index) => {
      if (inherits(index)) return parentHashes[index]!
      const part = Math.floor(index / blocksPerChunk)
      const offset = (index - part * blocksPerChunk) * DIGEST_BYTES * 2
      // Read in order (comparisons, the sha256 file): one hex conversion per part, then slices of it.
      if (part !== hexPart) {
        hexPart = part
        partHex = parts[part]!.toString("hex")
      }
      return partHex.slice(offset, offset + DIGEST_BYTES * 2)
    },
    inherits
  }
}
