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

export const makeDigestList = (): DigestList => {
  const parts: Array<Buffer> = []
  let count = 0
  // Blocks per part are equal but for the last chunk: find a block's part by walking back from a guess.
  let perPart = 1
  return {
    count: () => count,
    push: (digests) => {
      const part = Buffer.from(digests.buffer, digests.byteOffset, digests.byteLength)
      if (parts.length === 0) perPart = Math.max(1, part.length / DIGEST_BYTES)
      parts.push(part)
      count += part.length / DIGEST_BYTES
    },
    hexAt: (index) => {
      const part = Math.min(Math.floor(index / perPart), parts.length - 1)
      const offset = (index - part * perPart) * DIGEST_BYTES
      return parts[part]!.toString("hex", offset, offset + DIGEST_BYTES)
    }
  }
}
