import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import type { Range } from "../../src/driver/extents.js"
import { allOfKind, BlockKind, blockRuns, classifyBlocks } from "../../src/driver/readPlan.js"

/** Sorted, disjoint ranges inside [0, limit), empty ones included (a server may send them). */
const rangesArb = (limit: number) =>
  fc.array(fc.nat({ max: limit }), { maxLength: 12 }).map((points): Array<Range> => {
    const sorted = [...points].sort((a, b) => a - b)
    const ranges: Array<Range> = []
    for (let i = 0; i + 1 < sorted.length; i += 2) ranges.push({ start: sorted[i]!, end: sorted[i + 1]! })
    return ranges
  })

/** The definition, block by block: a block meeting a change is not the parent's, one meeting no data is zeros (an empty range meets nothing). */
const reference = (map: { changed?: ReadonlyArray<Range>; data?: ReadonlyArray<Range> }, start: number, end: number, blockSize: number) => {
  const meets = (ranges: ReadonlyArray<Range>, from: number, to: number) => ranges.some((r) => r.start < r.end && r.start < to && r.end > from)
  const kinds: Array<number> = []
  for (let from = start; from < end; from += blockSize) {
    const to = Math.min(end, from + blockSize)
    kinds.push(
      map.changed !== undefined && !meets(map.changed, from, to)
        ? BlockKind.parent
        : map.data !== undefined && !meets(map.data, from, to)
          ? BlockKind.zero
          : BlockKind.read
    )
  }
  return kinds
}

const VOLUME = 1000

describe("classifyBlocks", () => {
  it.prop(
    "gives each block the kind the definition gives it, for any slot of the volume and any block size",
    [rangesArb(VOLUME), rangesArb(VOLUME), fc.boolean(), fc.boolean(), fc.integer({ min: 1, max: 64 }), fc.nat({ max: VOLUME - 1 }), fc.integer({ min: 1, max: VOLUME })],
    ([changed, data, withChanged, withData, blockSize, rawStart, length]) => {
      // Slots start on a block and end on one or at the volume's end.
      const start = Math.floor(rawStart / blockSize) * blockSize
      const end = Math.min(VOLUME, start + Math.max(1, Math.ceil(length / blockSize)) * blockSize)
      const map = { ...(withChanged ? { changed } : {}), ...(withData ? { data } : {}) }
      expect(Array.from(classifyBlocks(map, start, end, blockSize))).toEqual(reference(map, start, end, blockSize))
    },
    { fastCheck: { numRuns: 2000 } }
  )
})

describe("blockRuns and allOfKind", () => {
  it.prop(
    "find the maximal runs of a kind, and tell a range of one kind, within any bounds",
    [fc.array(fc.constantFrom(BlockKind.read, BlockKind.zero, BlockKind.parent), { maxLength: 80 }), fc.nat({ max: 80 }), fc.nat({ max: 80 })],
    ([list, a, b]) => {
      const kinds = Uint8Array.from(list)
      const from = Math.min(a, b, kinds.length)
      const to = Math.min(Math.max(a, b), kinds.length)
      for (const kind of Object.values(BlockKind)) {
        const expected: Array<Range> = []
        for (let i = from; i < to; i++) {
          if (kinds[i] !== kind) continue
          const last = expected[expected.length - 1]
          if (last !== undefined && last.end === i) expected[expected.length - 1] = { start: last.start, end: i + 1 }
          else expected.push({ start: i, end: i + 1 })
        }
        expect(blockRuns(kinds, kind, from, to)).toEqual(expected)
        expect(allOfKind(kinds, kind, from, to)).toBe(list.slice(from, to).every((k) => k === kind))
      }
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
