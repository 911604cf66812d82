/**
 * A legitimate backup of 150,000 objects (a 137 GiB volume at 1 MiB chunks
 * has that many; here 512-byte chunks): every program that reads a whole
 * object list must handle it, with no call spread over the list (which
 * overflowed the stack past ~130,000) and in time proportional to it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { backup, BackupCatalog, exportRecord, importRecord, layerMemoryCatalog, restore, verify } from "../../src/index.js"
import { memoryServices, patternedVolume, withTempDir, writeVolume } from "../support/layers.js"

const OBJECTS = Number(process.env.MANY_OBJECTS ?? 150_000)
const CHUNK = 512

describe("a backup of 150,000 objects", () => {
  it.live(
    "backs up, restores, verifies (plain and --full), and survives export and import",
    () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const path = join(dir, "disk.img")
          const volume = patternedVolume(OBJECTS * CHUNK, 3, 700, 100)
          yield* writeVolume(path, volume)
          const record = yield* backup({ id: "many", volume_id: "v" }, path, { chunkSize: CHUNK, shaBlockSize: CHUNK, compression: "zstd" })
          expect(record.object_count).toBe(OBJECTS)
          const target = join(dir, "restored.img")
          yield* restore("many", target, { volumeIsNew: true })
          expect(readFileSync(target).equals(Buffer.from(volume))).toBe(true)
          const plain = yield* verify("many")
          expect(plain).toMatchObject({ objectsChecked: OBJECTS, problems: [] })
          const full = yield* verify("many", { full: true })
          expect(full).toMatchObject({ objectsChecked: OBJECTS, full: true, problems: [] })
          // Export, then import into a new catalog over the same store, and restore from there.
          const exported = exportRecord(yield* (yield* BackupCatalog).get("many"), "memory")
          const imported = yield* importRecord(exported.backup_service, exported.backup_url)
          const again = join(dir, "again.img")
          yield* Effect.gen(function* () {
            yield* (yield* BackupCatalog).create(imported)
            yield* restore("many", again)
          }).pipe(Effect.provide(layerMemoryCatalog()))
          expect(readFileSync(again).equals(Buffer.from(volume))).toBe(true)
        }).pipe(Effect.provide(memoryServices()))
      ),
    300_000
  )
})
