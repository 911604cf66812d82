/** native/md5.c: md5 of many buffers side by side agrees with OpenSSL's, whatever the lengths, with every kernel the CPU has. */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { createHash } from "node:crypto"
import { createRequire } from "node:module"
import { packageFile } from "../../src/codec/native.js"

const { md5Many, lanes } = createRequire(import.meta.url)(packageFile("native/build/Release/md5.node")!) as {
  readonly md5Many: (views: ReadonlyArray<Uint8Array>, maxLanes?: number) => Buffer
  readonly lanes: number
}

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex")
/** The kernels this CPU runs: 16 lanes (AVX-512), 8 (AVX2), 1. */
const widths = [16, 8, 1].filter((width) => width <= lanes)
/** The digests by every kernel, which must agree. */
const digests = (views: ReadonlyArray<Uint8Array>) => {
  const [first, ...others] = widths.map((width) => {
    const out = md5Many(views, width)
    expect(out.length).toBe(16 * views.length)
    return views.map((_, i) => out.toString("hex", 16 * i, 16 * i + 16))
  })
  for (const other of others) expect(other).toEqual(first)
  return first!
}

// Lengths around the padding edges (55/56/63/64 bytes) and lanes that end at different blocks.
const message = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.uint8Array({ minLength: 50, maxLength: 130 }),
  fc.uint8Array({ maxLength: 5000 })
)

describe("md5Many", () => {
  it("reports its lanes: 16 with AVX-512, 8 with AVX2, else 1", () => {
    expect([1, 8, 16]).toContain(lanes)
  })

  it.prop("each digest is the md5 of its buffer, for any number and mix of lengths", [fc.array(message, { maxLength: 40 })], ([views]) => {
    expect(digests(views)).toEqual(views.map(md5))
  }, { fastCheck: { numRuns: 300 } })

  it("reads views at any offset, also of shared memory, and leaves them unchanged", () => {
    const shared = new Uint8Array(new SharedArrayBuffer(1 << 20))
    for (let i = 0; i < shared.length; i++) shared[i] = (i * 7919) >>> 3
    const before = Buffer.from(shared)
    const views = Array.from({ length: 37 }, (_, i) => shared.subarray(i * 3001 + i, i * 3001 + i + 1000 * i + 57))
    expect(digests(views)).toEqual(views.map(md5))
    expect(Buffer.from(shared).equals(before)).toBe(true)
  })

  it("one long message among short ones, finished alone", () => {
    const long = new Uint8Array(3 << 20).fill(1)
    const views = [long, ...Array.from({ length: 9 }, (_, i) => new Uint8Array(64 * i + 3).fill(i))]
    expect(digests(views)).toEqual(views.map(md5))
  })

  it("refuses what is not an array of Uint8Arrays", () => {
    expect(() => md5Many("x" as never)).toThrow(/array of Uint8Arrays/)
    expect(() => md5Many([new Uint16Array(4)] as never)).toThrow(/array of Uint8Arrays/)
  })
})
