/**
 * native/bz2.c works in 1 MiB steps when given a stop flag: the same bytes
 * as without one, and a flag set by another thread ends the work early
 * (what lets a cancelled backup's codec worker be terminated at once).
 */
import { describe, expect, it } from "@effect/vitest"
import { bz2 } from "../../src/codec/native.js"
import { patternedVolume } from "../support/layers.js"

describe("bzip2 with a stop flag", () => {
  it("compresses to the same bytes in steps, and decompresses them back", async () => {
    const data = patternedVolume(3 * 1024 * 1024 + 777, 9, 5000, 100)
    const stop = new Int32Array(new SharedArrayBuffer(4))
    const stepped = await bz2().compress(data, 9, stop)
    expect(stepped.equals(await bz2().compress(data, 9))).toBe(true)
    expect(Buffer.from(await bz2().decompress(stepped, data.length, stop)).equals(Buffer.from(data))).toBe(true)
  })

  it("gives up once the flag is set, compressing or decompressing", async () => {
    const data = patternedVolume(4 * 1024 * 1024, 3)
    const compressed = await bz2().compress(data, 9)
    const stop = new Int32Array(new SharedArrayBuffer(4))
    Atomics.store(stop, 0, 1)
    await expect(bz2().compress(data, 9, stop)).rejects.toThrow("bzip2: stopped")
    await expect(bz2().decompress(compressed, data.length, stop)).rejects.toThrow("bzip2: stopped")
  })

  it("refuses a stop flag that is not an Int32Array", () => {
    expect(() => bz2().compress(new Uint8Array(10), 9, new Uint8Array(4) as unknown as Int32Array)).toThrow("stop must be an Int32Array")
  })
})
