/**
 * Driver behaviour case by case: refusals, corrupt stores, cancellation,
 * progress, volume metadata, delete, sparse restores.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import { readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import {
  backup,
  BackupCatalog,
  deleteBackup,
  ObjectStore,
  restore,
  VolumeMetadata,
  type ProgressEvent
} from "../../src/index.js"
import { memoryServices, patternedVolume as pattern, tamper, withTempDir, wrapStore, writeVolume } from "../support/layers.js"

const options = { chunkSize: 4096, shaBlockSize: 1024, compression: "zlib" }


/** A volume, a full backup "full" and an incremental "inc" of it, in memory. */
const withChain = <A, E, R>(use: (dir: string, volume: Uint8Array) => Effect.Effect<A, E, R>) =>
  withTempDir((dir) =>
    Effect.gen(function* () {
      const volume = pattern(20_000)
      const path = join(dir, "vol.img")
      yield* writeVolume(path, volume)
      yield* backup({ id: "full", volume_id: "v" }, path, options)
      volume.fill(5, 9000, 9500)
      yield* writeVolume(path, volume)
      yield* backup({ id: "inc", volume_id: "v", parent_id: "full" }, path, options)
      return yield* use(dir, volume)
    })
  )

const restoreError = (id: string, dir: string) => Effect.flip(restore(id, join(dir, "out.img")))

describe("restore refuses broken backups with typed errors", () => {
  it.effect("a corrupt data object is an IntegrityError naming it", () =>
    withChain((dir) =>
      Effect.gen(function* () {
        // Stored uncompressed? Flip a byte of a raw object; zlib objects fail decompression instead.
        yield* tamper("full", "-00002", (b) => b.map((x, i) => (i === 10 ? x ^ 0xff : x)))
        const error = yield* restoreError("inc", dir)
        expect(["IntegrityError", "CompressionError"]).toContain(error._tag)
        expect(error.message).toContain("-00002")
        // The status is handed back: the backup stays restorable once repaired.
        expect((yield* (yield* BackupCatalog).get("inc")).status).toBe("available")
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("an md5 mismatch after clean decompression is an IntegrityError", () =>
    withChain((dir) =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        const record = yield* (yield* BackupCatalog).get("full")
        const name = `${record.service_metadata}_metadata`
        const text = new TextDecoder().decode(yield* store.get(record.container!, name))
        const tampered = text.replace(/"md5": "[0-9a-f]{32}"/, `"md5": "${"0".repeat(32)}"`)
        yield* store.put(record.container!, name, new TextEncoder().encode(tampered))
        const error = yield* restoreError("full", dir)
        expect(error._tag).toBe("IntegrityError")
        expect(error.message).toMatch(/backup full: object .*-00001 is corrupt/)
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("a missing or an extra object is InvalidBackup, before the target is touched", () =>
    withChain((dir) =>
      Effect.gen(function* () {
        yield* tamper("inc", "-00001", () => null)
        const missing = yield* restoreError("inc", dir)
        expect(missing._tag).toBe("InvalidBackup")
        expect(missing.message).toContain("missing")
        expect(() => statSync(join(dir, "out.img"))).toThrow()
        const store = yield* ObjectStore
        const full = yield* (yield* BackupCatalog).get("full")
        yield* store.put(full.container!, `${full.service_metadata}-99999`, new Uint8Array([1]))
        const extra = yield* restoreError("full", dir)
        expect(extra._tag).toBe("InvalidBackup")
        expect(extra.message).toContain("unexpected")
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("truncated, invalid or mistyped metadata is InvalidBackup naming the object", () =>
    withChain((dir) =>
      Effect.gen(function* () {
        const cases: Array<(text: string) => string> = [
          (t) => t.slice(0, t.length / 2),
          () => "not json",
          (t) => t.replace(/"offset": \d+/, '"offset": "zero"'),
          (t) => t.replace(/"objects": \[/, '"objects": 7, "x": ['),
          (t) => t.replace(/"backup_id": "full"/, '"backup_id": 3')
        ]
        for (const mangle of cases) {
          const store = yield* ObjectStore
          const record = yield* (yield* BackupCatalog).get("full")
          const name = `${record.service_metadata}_metadata`
          const original = yield* store.get(record.container!, name)
          yield* store.put(record.container!, name, new TextEncoder().encode(mangle(new TextDecoder().decode(original))))
          const error = yield* restoreError("full", dir)
          expect(error._tag).toBe("InvalidBackup")
          expect(error.message).toContain("_metadata")
          yield* store.put(record.container!, name, original)
        }
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("an unknown metadata version is UnsupportedVersion", () =>
    withChain((dir) =>
      Effect.gen(function* () {
        yield* tamper("full", "_metadata", (b) => new TextEncoder().encode(new TextDecoder().decode(b).replace('"1.0.0"', '"2.0.0"')))
        const error = yield* restoreError("inc", dir)
        expect(error._tag).toBe("UnsupportedVersion")
        expect(error.message).toContain("2.0.0")
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("a missing parent or a cycle in the chain is InvalidBackup", () =>
    withChain((dir) =>
      Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        yield* catalog.update("full", (r) => ({ ...r, parent_id: "inc" }))
        expect((yield* restoreError("inc", dir)).message).toContain("cycle")
        yield* catalog.update("full", (r) => ({ ...r, parent_id: "gone" }))
        const error = yield* restoreError("inc", dir)
        expect(error._tag).toBe("InvalidBackup")
        expect(error.message).toContain("gone")
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("only an available backup can be restored", () =>
    withChain((dir) =>
      Effect.gen(function* () {
        yield* (yield* BackupCatalog).transition("inc", ["available"], "error")
        expect((yield* restoreError("inc", dir))._tag).toBe("InvalidRequest")
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})

describe("backup refusals", () => {
  it.effect("sha block size changed since the parent: InvalidBackup; volume grew: InvalidRequest before any record", () =>
    withChain((dir) =>
      Effect.gen(function* () {
        const path = join(dir, "vol.img")
        const changed = yield* Effect.flip(
          backup({ id: "x1", volume_id: "v", parent_id: "inc" }, path, { ...options, shaBlockSize: 2048 })
        )
        expect(changed._tag).toBe("InvalidBackup")
        expect(changed.message).toContain("hash block size has changed")
        yield* writeVolume(path, pattern(30_000))
        const grew = yield* Effect.flip(backup({ id: "x2", volume_id: "v", parent_id: "inc" }, path, options))
        expect(grew._tag).toBe("InvalidRequest")
        expect(grew.message).toContain("volume size increased")
        const catalog = yield* BackupCatalog
        expect((yield* catalog.get("x1")).status).toBe("error")
        expect((yield* Effect.flip(catalog.get("x2")))._tag).toBe("BackupNotFound")
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("a chunk size that is not a multiple of the sha block, or an unknown compression: InvalidRequest", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const path = join(dir, "vol.img")
        yield* writeVolume(path, pattern(5000))
        const sizes = yield* Effect.flip(backup({ id: "a", volume_id: "v" }, path, { chunkSize: 1000, shaBlockSize: 512 }))
        expect(sizes._tag).toBe("InvalidRequest")
        const compression = yield* Effect.flip(backup({ id: "b", volume_id: "v" }, path, { ...options, compression: "lzma" }))
        expect(compression.message).toContain("unsupported compression algorithm: lzma")
        const missing = yield* Effect.flip(backup({ id: "c", volume_id: "v" }, join(dir, "nope.img"), options))
        expect(missing._tag).toBe("VolumeError")
        const parent = yield* Effect.flip(backup({ id: "d", volume_id: "v", parent_id: "nobody" }, path, options))
        expect(parent.message).toContain("parent backup nobody does not exist")
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})

describe("cancellation, progress, volume metadata, delete", () => {
  it.live("a backup whose status becomes deleting stops, deletes what it wrote, and fails with BackupCancelled", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        const store = yield* ObjectStore
        const path = join(dir, "vol.img")
        yield* writeVolume(path, pattern(400_000))
        let puts = 0
        // Writes slow down so the cancellation lands mid-backup.
        const slow = wrapStore((s) => ({ ...s, put: (c, o, b, x) => Effect.zipRight(Effect.sleep(5), Effect.sync(() => puts++)).pipe(Effect.zipRight(s.put(c, o, b, x))) }))
        const fiber = yield* Effect.fork(slow(backup({ id: "victim", volume_id: "v" }, path, { ...options, concurrency: 1 })))
        yield* Effect.sleep(100)
        expect(puts).toBeGreaterThan(0)
        yield* catalog.transition("victim", ["creating"], "deleting")
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error._tag).toBe("BackupCancelled")
        const record = yield* catalog.get("victim")
        expect(record.status).toBe("deleted")
        expect(yield* store.list(record.container!, record.service_metadata!)).toEqual([])
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("progress events come every N objects and end at 100 %", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const path = join(dir, "vol.img")
        yield* writeVolume(path, pattern(40_000))
        const events: Array<ProgressEvent> = []
        const onProgress = (e: ProgressEvent) => Effect.sync(() => void events.push(e))
        yield* backup({ id: "p", volume_id: "v" }, path, { ...options, onProgress, progressEveryObjects: 3 })
        // 10 chunks of 4096 bytes: events after 3, 6, 9, then the final one.
        // (Small chunks share a slot: its objects count as they are stored, batch by batch.)
        expect(events.map((e) => e.objects)).toEqual([3, 6, 9, 10])
        expect(events.at(-1)).toMatchObject({ percent: 100, done: true, bytesDone: 40_000, operation: "backup" })
        const restoreEvents: Array<ProgressEvent> = []
        yield* restore("p", join(dir, "out.img"), { onProgress: (e) => Effect.sync(() => void restoreEvents.push(e)), progressEveryObjects: 5 })
        // A restore packs small objects into shared worker jobs: its progress moves a job at a time.
        expect(restoreEvents.at(-1)).toMatchObject({ percent: 100, done: true, objects: 10 })
        const percents = restoreEvents.map((e) => e.percent)
        expect(percents).toEqual([...percents].sort((a, b) => a - b))
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("volume metadata is backed up as volume_meta and handed back on restore, version-checked", () => {
    const put: Array<string> = []
    const meta = JSON.stringify({ version: 2, "volume-metadata": { k: "v" } })
    const metadataLayer = Layer.succeed(
      VolumeMetadata,
      VolumeMetadata.of({ get: () => Effect.succeed(meta), put: (_, m) => Effect.sync(() => void put.push(m)) })
    )
    return withChain((dir) =>
      Effect.gen(function* () {
        yield* restore("inc", join(dir, "out.img"))
        expect(put).toEqual([meta, meta])
        yield* tamper("inc", "_metadata", (b) =>
          new TextEncoder().encode(new TextDecoder().decode(b).replace('\\"version\\":2', '\\"version\\":3'))
        )
        const error = yield* restoreError("inc", dir)
        expect(error._tag).toBe("VolumeMetadataError")
      })
    ).pipe(Effect.provide(Layer.merge(memoryServices(), metadataLayer)))
  })

  it.effect("delete is refused while incrementals depend on a backup, then removes every object", () =>
    withChain(() =>
      Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        const store = yield* ObjectStore
        const refused = yield* Effect.flip(deleteBackup("full"))
        expect(refused.message).toContain("dependent incremental backups (inc)")
        const inc = yield* catalog.get("inc")
        yield* deleteBackup("inc")
        expect((yield* catalog.get("inc")).status).toBe("deleted")
        expect(yield* store.list(inc.container!, inc.service_metadata!)).toEqual([])
        yield* deleteBackup("full")
        expect((yield* catalog.get("full")).status).toBe("deleted")
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("a restore into a new file keeps zero MiB parts as holes", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const path = join(dir, "vol.img")
        const volume = new Uint8Array(8 * 1024 * 1024)
        volume.fill(7, 0, 1000)
        volume.fill(9, 7 * 1024 * 1024, 7 * 1024 * 1024 + 10)
        yield* writeVolume(path, volume)
        yield* backup({ id: "s", volume_id: "v" }, path, { chunkSize: 4 * 1024 * 1024, shaBlockSize: 32768 })
        const target = join(dir, "sparse.img")
        yield* restore("s", target, { volumeIsNew: true })
        expect(Buffer.from(readFileSync(target)).equals(Buffer.from(volume))).toBe(true)
        // Two MiB written at most, of eight.
        expect(statSync(target).blocks * 512).toBeLessThanOrEqual(2 * 1024 * 1024 + 65536)
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("a sparse restore writes runs of several MiB and a short last part, and skips the zero MiB between", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const MiB = 1024 * 1024
        const path = join(dir, "vol.img")
        const volume = new Uint8Array(8 * MiB + 300 * 1024)
        volume.fill(5, 0, 2.5 * MiB)
        volume.fill(6, 6 * MiB + 100)
        yield* writeVolume(path, volume)
        yield* backup({ id: "r", volume_id: "v" }, path, { chunkSize: 4 * MiB, shaBlockSize: 32768 })
        const target = join(dir, "runs.img")
        yield* restore("r", target, { volumeIsNew: true })
        expect(Buffer.from(readFileSync(target)).equals(Buffer.from(volume))).toBe(true)
        // MiB 0-2 and 6-8 plus the short tail: the three zero MiB in between stay holes.
        expect(statSync(target).blocks * 512).toBeLessThanOrEqual(5.5 * MiB + 65536)
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.live("watch streams the current status and each change", () =>
    withChain(() =>
      Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        const fiber = yield* Effect.fork(Stream.runCollect(Stream.take(catalog.watch("inc"), 3)))
        yield* Effect.sleep(50)
        yield* catalog.transition("inc", ["available"], "restoring")
        yield* catalog.transition("inc", ["restoring"], "available")
        expect([...(yield* Fiber.join(fiber))]).toEqual(["available", "restoring", "available"])
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})

