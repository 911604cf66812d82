/**
 * The rule at the heart of a restore, in the worker's typed job code
 * (src/codec/jobs.ts), run here on the main thread: nothing of an object is
 * written before its length, md5 and sha256s are checked, and nothing after
 * the first object that fails.
 */
import { describe, expect, it } from "vitest"
import { createHash } from "node:crypto"
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { restoreObjects } from "../../src/codec/jobs.js"
import type { RestoreObject } from "../../src/codec/protocol.js"

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex")
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest()
const counters = () => ({ stop: new Int32Array(new SharedArrayBuffer(4)), done: new BigInt64Array(new SharedArrayBuffer(8)) })

/** Three 1000-byte objects (stored raw) meant for offsets 0, 1000 and 2000 of a 3000-byte target of 0xEE. */
const setup = () => {
  const dir = mkdtempSync(join(tmpdir(), "cb-restore-job-"))
  const target = join(dir, "target.img")
  writeFileSync(target, Buffer.alloc(3000, 0xee))
  const bodies = [1, 2, 3].map((k) => new Uint8Array(1000).fill(k))
  const objects: Array<RestoreObject> = bodies.map((data, i) => ({
    algorithm: "none",
    data,
    at: i * 1000,
    expectedLength: 1000,
    expectedMd5: md5(data),
    ranges: [[0, 1000, i * 1000]]
  }))
  return { dir, target, bodies, objects }
}

const run = async (target: string, objects: ReadonlyArray<RestoreObject>) => {
  const fd = openSync(target, "r+")
  try {
    const work = counters()
    const outcomes = await restoreObjects({ op: "restore", id: 0, objects, into: new Uint8Array(new SharedArrayBuffer(3000)), fd, sparse: false }, work)
    return { outcomes, done: Number(work.done[0]) }
  } finally {
    closeSync(fd)
  }
}

describe("a restore job writes an object only once it checks out", () => {
  it("all good: every object written, every byte counted", async () => {
    const { dir, target, bodies, objects } = setup()
    try {
      const { outcomes, done } = await run(target, objects)
      expect(outcomes.map((o) => o._tag)).toEqual(["Checked", "Checked", "Checked"])
      expect(readFileSync(target).equals(Buffer.concat(bodies))).toBe(true)
      expect(done).toBe(3000)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("a wrong md5: that object and those after it are not written", async () => {
    const { dir, target, bodies, objects } = setup()
    try {
      const forged = [objects[0]!, { ...objects[1]!, expectedMd5: md5(new Uint8Array(1000).fill(9)) }, objects[2]!]
      const { outcomes } = await run(target, forged)
      expect(outcomes).toEqual([
        { _tag: "Checked", md5: md5(bodies[0]!), length: 1000 },
        { _tag: "Checked", md5: md5(bodies[1]!), length: 1000 }
      ])
      const after = readFileSync(target)
      expect(after.subarray(0, 1000).equals(Buffer.from(bodies[0]!))).toBe(true)
      expect(after.subarray(1000).equals(Buffer.alloc(2000, 0xee))).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("a wrong length (more bytes than expected do not fit; fewer are refused) is not written", async () => {
    const { dir, target, objects } = setup()
    try {
      const short = { ...objects[0]!, data: new Uint8Array(999).fill(1) }
      const { outcomes } = await run(target, [short])
      expect(outcomes[0]).toMatchObject({ _tag: "Checked", length: 999 })
      const long = { ...objects[0]!, data: new Uint8Array(1001).fill(1) }
      expect((await run(target, [long])).outcomes[0]).toMatchObject({ _tag: "Failed", stage: "decompress" })
      expect(readFileSync(target).equals(Buffer.alloc(3000, 0xee))).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("a right md5 but a sha256 that is not the listed one: not written, the block named", async () => {
    const { dir, target, bodies, objects } = setup()
    try {
      const blocks = (b: Uint8Array) => Buffer.concat([sha(b.subarray(0, 500)), sha(b.subarray(500))])
      const listed = blocks(new Uint8Array(1000).fill(4))
      const checked = objects.map((o, i) => ({ ...o, sha256: { blockSize: 500, expected: i === 1 ? listed : blocks(bodies[i]!) } }))
      const { outcomes } = await run(target, checked)
      expect(outcomes.map((o) => o._tag)).toEqual(["Checked", "ShaMismatch"])
      expect(outcomes[1]).toMatchObject({ block: 2 })
      expect(readFileSync(target).subarray(1000).equals(Buffer.alloc(2000, 0xee))).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
