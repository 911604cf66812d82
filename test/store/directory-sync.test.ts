/**
 * The posix store's shared directory fsyncs: every put waits for an fsync
 * that started after its rename, and puts that finish together share one.
 */
import { describe, expect, it } from "@effect/vitest"
import { sharedDirectorySyncs } from "../../src/store/directorySync.js"

/** An fsync that records when it starts and ends when told to. */
const controlledFsync = () => {
  const started: Array<{ dir: string; finish: () => void }> = []
  const fsync = (dir: string) => new Promise<void>((resolve) => started.push({ dir, finish: resolve }))
  return { started, fsync }
}
const settle = () => new Promise((resolve) => setTimeout(resolve, 0))

describe("shared directory fsyncs", () => {
  it("puts during a running fsync share the next one, which starts after it", async () => {
    const { started, fsync } = controlledFsync()
    const sync = sharedDirectorySyncs(fsync)
    let firstDone = false
    const first = sync("d").then(() => void (firstDone = true))
    await settle()
    expect(started.length).toBe(1)
    // Renames done while the first fsync runs: it may have started before them, so they wait for another.
    const later = [sync("d"), sync("d"), sync("d")]
    await settle()
    expect(started.length).toBe(1)
    started[0]!.finish()
    await first
    expect(firstDone).toBe(true)
    await settle()
    expect(started.length).toBe(2)
    let laterDone = false
    const all = Promise.all(later).then(() => void (laterDone = true))
    await settle()
    expect(laterDone).toBe(false)
    started[1]!.finish()
    await all
    expect(started.length).toBe(2)
  })

  it("directories do not share, and a failed fsync fails only those that waited for it", async () => {
    const { started, fsync } = controlledFsync()
    const failing = (dir: string) => (dir === "bad" ? Promise.reject(new Error("EIO")) : fsync(dir))
    const sync = sharedDirectorySyncs(failing)
    const a = sync("a")
    const b = sync("b")
    await expect(sync("bad")).rejects.toThrow("EIO")
    await settle()
    expect(started.map((s) => s.dir).sort()).toEqual(["a", "b"])
    for (const s of started) s.finish()
    await Promise.all([a, b])
    // After a failure the next put gets a fresh fsync.
    const again = sync("bad")
    await expect(again).rejects.toThrow("EIO")
  })
})
