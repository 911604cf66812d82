/**
 * The soak's one source of chance: a seeded generator (the store faults' mulberry32), so the
 * printed seed replays the same plan of operations. What races decide (a
 * cancel landing before or after a commit) still depends on timing.
 */
import { seededRandom } from "../../store/faults.js"

export interface Rng {
  /** in [0, 1) */
  readonly next: () => number
  /** an integer in [min, max] */
  readonly int: (min: number, max: number) => number
  readonly chance: (p: number) => boolean
  readonly pick: <A>(items: ReadonlyArray<A>) => A
  /** a version-4-shaped UUID from the generator, so backup ids replay too */
  readonly uuid: () => string
  readonly bytes: (n: number) => Buffer
}

export const makeRng = (seed: number): Rng => {
  const next = seededRandom(seed)
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1))
  const bytes = (n: number) => {
    const out = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i += 4) {
      const word = (next() * 4294967296) >>> 0
      for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (word >>> (8 * j)) & 0xff
    }
    return out
  }
  const uuid = () => {
    const hex = bytes(16).toString("hex")
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`
  }
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)]!,
    uuid,
    bytes
  }
}
