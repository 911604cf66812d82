import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { backup, layerMemoryCatalog, layerPosix, restore } from "../../src/index.js"
import { localServices } from "../support/layers.js"

describe("smoke", () => {
  it.effect("full + incremental backup to posix and restore", () => {
    const dir = mkdtempSync(join(tmpdir(), "cb-"))
    const vol = join(dir, "vol.img")
    const data = Buffer.alloc(3 * 1024 * 1024 + 1000)
    for (let i = 0; i < 500000; i++) data[i] = (i * 7919) % 251
    writeFileSync(vol, data)
    const layer = Layer.mergeAll(layerPosix({ root: join(dir, "store") }), layerMemoryCatalog()).pipe(
      Layer.provideMerge(localServices)
    )
    return Effect.gen(function* () {
      const full = yield* backup({ id: "11111111-aaaa", volume_id: "vol-1" }, vol, { chunkSize: 1024 * 1024, shaBlockSize: 32768 })
      expect(full.status).toBe("available")
      data.fill(9, 2_000_000, 2_100_000)
      writeFileSync(vol, data)
      const inc = yield* backup({ id: "22222222-bbbb", volume_id: "vol-1", parent_id: full.id }, vol, {
        chunkSize: 1024 * 1024,
        shaBlockSize: 32768,
        compression: "bz2"
      })
      expect(inc.object_count).toBe(2) // the edit crosses the 2 MiB chunk boundary
      yield* restore(inc.id, join(dir, "out.img"))
      expect(readFileSync(join(dir, "out.img")).equals(data)).toBe(true)
    }).pipe(Effect.provide(layer))
  })
})
