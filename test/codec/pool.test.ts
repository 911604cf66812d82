/** The worker-pool codec path the driver uses agrees with the in-thread codecs. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { decompressObject, openObject, parseCompression, prepareObject } from "../../src/index.js"
import { compressionName, volumeBytes } from "../support/arbitraries.js"

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex")

describe("codec worker pool", () => {
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
})
