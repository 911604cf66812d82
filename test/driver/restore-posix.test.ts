/**
 * The restore path where a codec worker reads posix objects itself and
 * writes the target: its failures stay typed and name what failed, and a
 * decorated store (no localPath) restores through `get`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { backup, layerMemoryCatalog, layerPosix, ObjectStore, restore, withRetry } from "../../src/index.js"
import { patternedVolume, withTempDir, wrapStore, writeVolume, localServices } from "../support/layers.js"

const posixServices = (root: string) =>
  Layer.mergeAll(layerPosix({ root }), layerMemoryCatalog()).pipe(Layer.provideMerge(localServices))

const MiB = 1024 * 1024

/** A posix store with one backup of a 3 MiB volume in `chunkSize` objects (1 MiB: 3 jobs of one; 64 KiB: 48 in one job). */
const withBackup = <A, E, R>(use: (dir: string, volume: Uint8Array, objectsDir: string) => Effect.Effect<A, E, R>, chunkSize = MiB) =>
  withTempDir((dir) =>
    Effect.gen(function* () {
      const volume = patternedVolume(3 * MiB, 7)
      yield* writeVolume(join(dir, "vol.img"), volume)
      const record = yield* backup({ id: "b", volume_id: "v" }, join(dir, "vol.img"), { chunkSize, shaBlockSize: 32768, compression: "zlib" })
      const objectsDir = join(dir, "store", record.container!)
      expect(yield* ObjectStore.pipe(Effect.map((store) => store.localPath !== undefined))).toBe(true)
      return yield* use(dir, volume, objectsDir)
    }).pipe(Effect.provide(posixServices(join(dir, "store"))))
  )

describe("restore from a posix store through the codec workers", () => {
  it.effect("an object the worker cannot read is read through the store, whose error names it", () =>
    withBackup((dir, _volume, objectsDir) =>
      Effect.gen(function* () {
        const name = readdirSync(objectsDir).find((n) => n.endsWith("-00002"))!
        rmSync(join(objectsDir, name))
        mkdirSync(join(objectsDir, name)) // still listed, but not a file
        const error = yield* Effect.flip(restore("b", join(dir, "out.img")))
        expect(error._tag).toBe("StoreError")
        expect(error.message).toContain(name)
      })
    )
  )

  it.effect("many small objects restore in shared worker jobs, their md5s taken side by side", () =>
    withBackup((dir, volume, objectsDir) =>
      Effect.gen(function* () {
        expect(readdirSync(objectsDir).filter((n) => /-\d{5}$/.test(n)).length).toBe(48)
        yield* restore("b", join(dir, "out.img"))
        expect(Buffer.from(readFileSync(join(dir, "out.img"))).equals(Buffer.from(volume))).toBe(true)
      }), 64 * 1024)
  )

  it.effect("an object of a shared job that is not what its metadata says is an IntegrityError naming it, and none of it is written", () =>
    withBackup((dir, volume, objectsDir) =>
      Effect.gen(function* () {
        // Another object's bytes: valid zlib of the same length, another md5.
        const names = readdirSync(objectsDir).filter((n) => /-\d{5}$/.test(n)).sort()
        writeFileSync(join(objectsDir, names[20]!), readFileSync(join(objectsDir, names[3]!)))
        const target = join(dir, "out.img")
        const error = yield* Effect.flip(restore("b", target))
        expect(error._tag).toBe("IntegrityError")
        expect(error.message).toContain(names[20])
        const written = readFileSync(target).subarray(20 * 64 * 1024, 21 * 64 * 1024)
        expect(written.every((byte) => byte === 0)).toBe(true)
        expect(volume.subarray(20 * 64 * 1024, 21 * 64 * 1024).some((byte) => byte !== 0)).toBe(true)
      }), 64 * 1024)
  )

  it.effect("a write the target refuses ends in VolumeError naming the target", () =>
    withBackup(() =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(restore("b", "/dev/full"))
        expect(error._tag).toBe("VolumeError")
        expect(error.message).toContain("/dev/full")
      })
    )
  )

  it.effect("a decorated store has no localPath and restores through get", () =>
    withBackup((dir, volume) =>
      Effect.gen(function* () {
        const target = join(dir, "retried.img")
        yield* Effect.flatMap(ObjectStore, (store) => Effect.sync(() => expect(store.localPath).toBeUndefined())).pipe(
          Effect.zipRight(restore("b", target)),
          wrapStore((store) => withRetry(store))
        )
        expect(Buffer.from(readFileSync(target)).equals(Buffer.from(volume))).toBe(true)
      })
    )
  )
})
