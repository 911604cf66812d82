/**
 * The restore path where a codec worker reads posix objects itself and
 * writes the target: its failures stay typed and name what failed, and a
 * decorated store (no localPath) restores through `get`.
 */
import { describe, expect, it } from "@effect/vitest"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Layer } from "effect"
import { mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { backup, layerMemoryCatalog, layerPosix, ObjectStore, restore, withRetry } from "../../src/index.js"
import { patternedVolume, withTempDir, wrapStore, writeVolume } from "../support/layers.js"

const posixServices = (root: string) =>
  Layer.mergeAll(layerPosix({ root }), layerMemoryCatalog).pipe(Layer.provideMerge(NodeFileSystem.layer))

const MiB = 1024 * 1024

/** A posix store with one backup of a 3 MiB volume in 1 MiB objects. */
const withBackup = <A, E, R>(use: (dir: string, volume: Uint8Array, objectsDir: string) => Effect.Effect<A, E, R>) =>
  withTempDir((dir) =>
    Effect.gen(function* () {
      const volume = patternedVolume(3 * MiB, 7)
      yield* writeVolume(join(dir, "vol.img"), volume)
      const record = yield* backup({ id: "b", volume_id: "v" }, join(dir, "vol.img"), { chunkSize: MiB, shaBlockSize: 32768, compression: "zlib" })
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
