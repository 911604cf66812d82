/**
 * fast-check arbitraries for volumes, edits and backup settings.
 */
import { FastCheck as fc } from "effect"

/** Volume bytes made of random, zero and repeated runs, of any length. */
export const volumeBytes = (maxSize: number) =>
  fc
    .array(
      fc.record({
        kind: fc.constantFrom("zero", "random", "fill"),
        length: fc.integer({ min: 1, max: Math.max(1, Math.floor(maxSize / 4)) }),
        seed: fc.integer({ min: 0, max: 255 })
      }),
      { minLength: 1, maxLength: 8 }
    )
    .map((runs) => {
      const parts = runs.map(({ kind, length, seed }) => {
        const part = new Uint8Array(length)
        if (kind === "fill") part.fill(seed)
        if (kind === "random") {
          let x = seed * 2654435761 + 1
          for (let i = 0; i < length; i++) {
            x = (x * 1103515245 + 12345) >>> 0
            part[i] = x >>> 24
          }
        }
        return part
      })
      const total = Math.min(maxSize, parts.reduce((sum, p) => sum + p.length, 0))
      const bytes = new Uint8Array(total)
      let offset = 0
      for (const part of parts) {
        bytes.set(part.subarray(0, Math.min(part.length, total - offset)), offset)
        offset += part.length
        if (offset >= total) break
      }
      return bytes
    })

/** An edit at a relative position; applied modulo the volume's size. */
export interface Edit {
  readonly at: number
  readonly length: number
  readonly byte: number
}

/** Up to four edits of a volume: runs of one byte at relative positions. */
export const edits = fc.array(
  fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.integer({ min: 1, max: 5000 }), byte: fc.integer({ min: 0, max: 255 }) }),
  { minLength: 0, maxLength: 4 }
)

/** The volume after `changes` (a copy). */
export const applyEdits = (volume: Uint8Array, changes: ReadonlyArray<Edit>): Uint8Array => {
  const next = Uint8Array.from(volume)
  for (const { at, length, byte } of changes) {
    const start = Math.min(volume.length - 1, Math.floor(at * volume.length))
    next.fill(byte, start, Math.min(volume.length, start + length))
  }
  return next
}

/** Any compression name a backup may be asked for, in any spelling Cinder accepts. */
export const compressionName = fc.constantFrom("none", "off", "zlib", "gzip", "bz2", "bzip2", "zstd", "ZLIB")

/** A sha block size and a chunk size that is a multiple of it. */
export const sizes = fc
  .record({ sha: fc.constantFrom(512, 1024, 4096), blocks: fc.integer({ min: 1, max: 8 }) })
  .map(({ sha, blocks }) => ({ shaBlockSize: sha, chunkSize: sha * blocks }))

/** A backup chain to make: a first volume and settings, then the edits (and compression) of each incremental. */
export interface ChainPlan {
  readonly initial: Uint8Array
  readonly chunkSize: number
  readonly shaBlockSize: number
  readonly compression: string
  readonly steps: ReadonlyArray<{ readonly edits: ReadonlyArray<Edit>; readonly compression: string }>
}

/** Chains of a full backup of at most `maxSize` bytes and up to `maxIncrementals` incrementals. */
export const chains = (maxSize: number, maxIncrementals = 5): fc.Arbitrary<ChainPlan> =>
  fc
    .record({
      initial: volumeBytes(maxSize),
      sizes,
      compression: compressionName,
      steps: fc.array(fc.record({ edits, compression: compressionName }), { maxLength: maxIncrementals })
    })
    .map(({ initial, sizes: { chunkSize, shaBlockSize }, compression, steps }) => ({ initial, chunkSize, shaBlockSize, compression, steps }))

/** The volume after each backup of the chain, the full backup's first. */
export const chainStates = (chain: ChainPlan): Array<Uint8Array> =>
  chain.steps.reduce((states, step) => [...states, applyEdits(states.at(-1)!, step.edits)], [chain.initial])
