/**
 * Slot buffers are reused across operations: a long-lived process that runs
 * restore after restore allocates its shared memory once, instead of leaving
 * a pool's worth of SharedArrayBuffers for every operation to a GC that
 * frees them late.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { backup, restore, verify } from "../../src/index.js"
import { makeSlotPool, slotBuffersMade } from "../../src/codec/slots.js"
import { memoryServices, patternedVolume, withTempDir, writeVolume } from "../support/layers.js"

describe("slot buffers", () => {
  it.effect("a pool's buffers go to the next pool of the same size once its scope closes, bytes and all", () =>
    Effect.gen(function* () {
      const size = 12_345
      const before = slotBuffersMade()
      yield* Effect.scoped(Effect.gen(function* () {
        const slots = yield* makeSlotPool(size, 2)
        const [a, b] = [yield* slots.take, yield* slots.take]
        a.fill(1)
        b.fill(2)
      }))
      expect(slotBuffersMade()).toBe(before + 2)
      yield* Effect.scoped(Effect.gen(function* () {
        const slots = yield* makeSlotPool(size, 3)
        const seen = [yield* slots.take, yield* slots.take].map((slot) => slot[0]).sort()
        expect(seen).toEqual([1, 2])
        // A third is new: only two were kept.
        expect((yield* slots.take)[0]).toBe(0)
      }))
      expect(slotBuffersMade()).toBe(before + 3)
    })
  )

  it.effect("restores and verifies in one process, one after another, allocate no new slot buffers after the first", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const volume = patternedVolume(6 * 1024 * 1024, 3)
        yield* writeVolume(join(dir, "vol.img"), volume)
        yield* backup({ id: "b", volume_id: "v" }, join(dir, "vol.img"), { chunkSize: 1024 * 1024, compression: "zlib" })
        yield* restore("b", join(dir, "first.img"))
        const afterFirst = slotBuffersMade()
        for (let i = 0; i < 5; i++) {
          const target = join(dir, `again-${i}.img`)
          yield* restore("b", target)
          expect(Buffer.from(readFileSync(target)).equals(Buffer.from(volume))).toBe(true)
        }
        yield* verify("b", { full: true })
        yield* verify("b", { full: true })
        // The first verify may size its slots differently from a restore; the second reuses them.
        const afterVerify = slotBuffersMade()
        yield* restore("b", join(dir, "last.img"))
        yield* verify("b", { full: true })
        expect(slotBuffersMade()).toBe(afterVerify)
        expect(afterVerify - afterFirst).toBeLessThanOrEqual(4)
      }).pipe(Effect.provide(memoryServices()))
    )
  )
})
