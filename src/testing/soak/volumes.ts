/**
 * The soak's volumes: small image files whose bytes the soak keeps in
 * memory, edited at random between steps so incrementals have work. Each
 * backup remembers the sha256 of the volume as it was when the backup began
 * (nothing writes a volume while a backup of it runs), which its restore must
 * reproduce bit for bit.
 */
import { createHash } from "node:crypto"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import type { Rng } from "./random.js"

export interface Volume {
  readonly id: string
  readonly path: string
  readonly chunkSize: number
  bytes: Buffer
}

export const sha256Of = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const KiB = 1024

/** Mixed content: random runs, zero runs (zero objects, sparse restores) and repeated text (compressible). */
const fill = (rng: Rng, out: Buffer, start: number, end: number) => {
  let at = start
  while (at < end) {
    const run = Math.min(end - at, rng.int(4, 96) * KiB)
    const kind = rng.int(0, 2)
    if (kind === 0) rng.bytes(run).copy(out, at)
    else if (kind === 1) out.fill(0, at, at + run)
    else out.fill(`soak ${rng.int(0, 999)} `, at, at + run)
    at += run
  }
}

/** `count` volumes of 1 to 3 MiB (not all whole chunks) under `dir`, written to disk. */
export const makeVolumes = (rng: Rng, dir: string, count: number): Array<Volume> =>
  Array.from({ length: count }, (_, i) => {
    const size = rng.int(256, 768) * 4 * KiB + (i === 0 ? 1536 : 0)
    const bytes = Buffer.alloc(size)
    fill(rng, bytes, 0, size)
    const volume: Volume = { id: rng.uuid(), path: join(dir, `volume-${i}.img`), chunkSize: [65536, 131072, 262144][i % 3]!, bytes }
    writeFileSync(volume.path, bytes)
    return volume
  })

/** Rewrites 1 to 4 random ranges of the volume (never its size: a chain keeps one size). */
export const editVolume = (rng: Rng, volume: Volume) => {
  for (let n = rng.int(1, 4); n > 0; n--) {
    const length = Math.min(volume.bytes.length, rng.int(1, 64) * KiB)
    const start = rng.int(0, volume.bytes.length - length)
    fill(rng, volume.bytes, start, start + length)
  }
  writeFileSync(volume.path, volume.bytes)
}
