import { describe, expect, it } from "@effect/vitest"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { open } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { readWhole } from "../../src/store/posix.js"

/** readWhole told `expected` bytes of a file that holds `actual` (a file that changed between stat and read). */
const readTold = async (actual: number, expected: number) => {
  const dir = mkdtempSync(join(tmpdir(), "posix-read-"))
  try {
    const bytes = Buffer.from(Array.from({ length: actual }, (_, i) => (i * 7 + 3) % 256))
    writeFileSync(join(dir, "object"), bytes)
    const handle = await open(join(dir, "object"), "r")
    try {
      expect(Buffer.from(await readWhole(handle, expected, new AbortController().signal)).equals(bytes)).toBe(true)
    } finally {
      await handle.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe("the posix store's whole-file read", () => {
  it("returns every byte whether the file is as large as its stat said, has grown or has shrunk", async () => {
    for (const [actual, expected] of [[0, 0], [1, 1], [100_000, 100_000], [100_000, 0], [100_000, 1], [100_000, 99_999], [5, 100_000], [0, 10]]) {
      await readTold(actual!, expected!)
    }
  })

  it("stops when its signal is aborted", async () => {
    const controller = new AbortController()
    controller.abort(new Error("stopped"))
    const handle = await open(process.execPath, "r")
    try {
      await expect(readWhole(handle, 10, controller.signal)).rejects.toThrow("stopped")
    } finally {
      await handle.close()
    }
  })
})
