/** The worker-pool codec path the driver uses agrees with the in-thread codecs. */
import { expect, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { createHash } from "node:crypto"
import { decompressObject, parseCompression } from "../../src/index.js"
import { openObject, prepareObject } from "../../src/codec/codec.js"
import { hashInWorker } from "../../src/codec/poolJobs.js"
import { makeSlotPool } from "../../src/codec/slots.js"
import { compressionName, volumeBytes } from "../../src/testing/index.js"
import { sharedCodecPool } from "../support/layers.js"

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex")

layer(sharedCodecPool)("codec worker pool", (it) => {
  it.effect.prop(
    "prepareObject then openObject round-trips with the right md5, readable by the in-thread codecs",
    [volumeBytes(200_000), compressionName],
    ([data, name]) =>
      Effect.gen(function* () {
        const compression = yield* parseCompression(name)
        const expected = md5(data)
        const copy = Uint8Array.from(data)
        const prepared = yield* prepareObject(compression, copy)
        expect(prepared.md5).toBe(expected)
        expect(["none", compression.name]).toContain(prepared.algorithm)
        if (prepared.algorithm !== "none") expect(prepared.bytes.length).toBeLessThan(data.length)
        const inThread = yield* decompressObject(prepared.algorithm, prepared.bytes, data.length, "o")
        expect(Buffer.from(inThread).equals(Buffer.from(data))).toBe(true)
        const opened = yield* openObject(prepared.algorithm, prepared.bytes, data.length, "o")
        expect(opened.md5).toBe(expected)
        expect(Buffer.from(opened.bytes).equals(Buffer.from(data))).toBe(true)
      }),
    { fastCheck: { numRuns: 100 } }
  )

  it.effect("a view into a larger buffer is copied, so the rest of the buffer survives", () =>
    Effect.gen(function* () {
      const chunk = new Uint8Array(100_000).fill(7)
      const piece = chunk.subarray(10_000, 20_000)
      yield* prepareObject({ name: "zlib", algorithm: "zlib" }, piece)
      expect(chunk.length).toBe(100_000)
      expect(piece[0]).toBe(7)
    })
  )

  it.effect("corrupt data and oversized output fail with CompressionError naming the object", () =>
    Effect.gen(function* () {
      const prepared = yield* prepareObject({ name: "zstd", algorithm: "zstd" }, new Uint8Array(50_000).fill(1))
      const tooBig = yield* Effect.flip(openObject("zstd", prepared.bytes, 1000, "vol-00001"))
      expect(tooBig._tag).toBe("CompressionError")
      expect(tooBig.message).toContain("vol-00001")
      const garbage = yield* Effect.flip(openObject("bz2", new Uint8Array([1, 2, 3]), 10, "vol-00002"))
      expect(garbage.message).toContain("vol-00002")
      expect((yield* Effect.flip(openObject("lzma", new Uint8Array(1), 1, "x")))._tag).toBe("CompressionError")
    })
  )

  it.effect.prop(
    "a slot is compressed in place and decompressed into another slot, every algorithm",
    [volumeBytes(200_000), compressionName],
    ([data, name]) =>
      Effect.scoped(Effect.gen(function* () {
        const compression = yield* parseCompression(name)
        const slots = yield* makeSlotPool(200_000, 2)
        const source = yield* slots.take
        source.set(data)
        const prepared = yield* prepareObject(compression, source.subarray(0, data.length))
        expect(prepared.md5).toBe(md5(data))
        // Raw objects are the slot's own bytes; compressed ones are a buffer of their own.
        expect(prepared.bytes.buffer === source.buffer).toBe(prepared.algorithm === "none")
        const target = yield* slots.take
        const opened = yield* openObject(prepared.algorithm, Uint8Array.from(prepared.bytes), data.length, "o", target)
        expect(opened.bytes.buffer).toBe(target.buffer)
        expect(opened.md5).toBe(md5(data))
        expect(Buffer.from(opened.bytes).equals(Buffer.from(data))).toBe(true)
      })),
    { fastCheck: { numRuns: 50 } }
  )

  it.effect("into a slot: more bytes than expected, truncated or corrupt data fail with CompressionError", () =>
    Effect.scoped(Effect.gen(function* () {
      const slots = yield* makeSlotPool(100_000, 1)
      const slot = yield* slots.take
      for (const name of ["zlib", "zstd", "bz2", "none"]) {
        const compression = yield* parseCompression(name)
        const prepared = yield* prepareObject(compression, new Uint8Array(50_000).fill(3))
        const tooLong = yield* Effect.flip(openObject(prepared.algorithm, Uint8Array.from(prepared.bytes), 49_999, "vol-00007", slot))
        expect(tooLong.message).toContain("vol-00007")
        if (name === "none") continue
        const cut = prepared.bytes.subarray(0, Math.floor(prepared.bytes.length / 2))
        expect((yield* Effect.flip(openObject(name, Uint8Array.from(cut), 50_000, "vol-00008", slot))).message).toContain("vol-00008")
      }
      const garbage = yield* Effect.flip(openObject("zlib", new Uint8Array([1, 2, 3, 4]), 10, "vol-00009", slot))
      expect(garbage._tag).toBe("CompressionError")
    }))
  )

  it.effect("a slot pool makes at most `count` slots and a take waits until one is given back", () =>
    Effect.scoped(Effect.gen(function* () {
      const slots = yield* makeSlotPool(16, 2)
      const a = yield* slots.take
      const b = yield* slots.take
      expect(a.buffer).not.toBe(b.buffer)
      const waiting = yield* Effect.fork(slots.take)
      yield* Effect.yieldNow()
      expect(yield* Fiber.poll(waiting)).toEqual(expect.objectContaining({ _tag: "None" }))
      yield* slots.give(a.subarray(3, 5))
      const c = yield* Fiber.join(waiting)
      expect(c.buffer).toBe(a.buffer)
      expect(c.length).toBe(16)
    }))
  )

  it.effect("all-zero objects and blocks, whose results the workers reuse, come out right every time", () =>
    Effect.scoped(Effect.gen(function* () {
      const zeros = new Uint8Array(300_000)
      const slots = yield* makeSlotPool(zeros.length, 1)
      const slot = yield* slots.take
      for (const name of ["zlib", "zstd", "bz2", "none"]) {
        const compression = yield* parseCompression(name)
        for (let round = 0; round < 4; round++) {
          // Shared (a slot) and owned inputs alike, more rounds than workers.
          const input = round % 2 === 0 ? slot.subarray(0, zeros.length) : new Uint8Array(zeros.length)
          const prepared = yield* prepareObject(compression, input)
          expect(prepared.md5).toBe(md5(zeros))
          const opened = yield* openObject(prepared.algorithm, Uint8Array.from(prepared.bytes), zeros.length, "z", slot)
          expect(opened.md5).toBe(md5(zeros))
          expect(Buffer.from(opened.bytes).equals(Buffer.from(zeros))).toBe(true)
        }
      }
      const digests = yield* hashInWorker(slot.subarray(0, 3 * 32768 + 100), 32768)
      const hashes = Buffer.from(digests).toString("hex").match(/.{64}/g)
      const zeroBlock = createHash("sha256").update(new Uint8Array(32768)).digest("hex")
      expect(hashes).toEqual([zeroBlock, zeroBlock, zeroBlock, createHash("sha256").update(new Uint8Array(100)).digest("hex")])
    }))
  )
})
