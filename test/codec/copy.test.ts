import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { copyInto } from "../../src/codec/native.js"

describe("copyInto (native/copy.c)", () => {
  it.prop(
    "copies like TypedArray.prototype.set, into shared memory or not, whatever the alignment",
    [fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 300 }), fc.nat({ max: 300 }), fc.nat({ max: 40 }), fc.boolean()],
    ([source, a, b, at, shared]) => {
      const start = Math.min(a, b, source.length)
      const end = Math.min(Math.max(a, b), source.length)
      const size = at + (end - start) + 3
      const target = shared ? new Uint8Array(new SharedArrayBuffer(size)) : new Uint8Array(size)
      const expected = new Uint8Array(size)
      target.fill(7)
      expected.fill(7)
      expected.set(source.subarray(start, end), at)
      copyInto(target, at, source, start, end)
      expect(Array.from(target)).toEqual(Array.from(expected))
    },
    { fastCheck: { numRuns: 500 } }
  )

  it("refuses a range outside the source or the target, with the sizes", () => {
    const target = new Uint8Array(8)
    expect(() => copyInto(target, 4, new Uint8Array(10), 0, 5)).toThrow(/\[0, 5\) of a 10-byte source does not fit a 8-byte target at 4/)
    expect(() => copyInto(target, 0, new Uint8Array(10), 6, 11)).toThrow(RangeError)
    expect(() => copyInto(target, 0, new Uint8Array(10), 6, 5)).toThrow(RangeError)
    expect(() => copyInto(target, -1, new Uint8Array(10), 0, 1)).toThrow(RangeError)
    expect(target.every((byte) => byte === 0)).toBe(true)
  })
})
