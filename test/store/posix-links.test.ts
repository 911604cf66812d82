/**
 * The posix store never reads or writes outside its root: a link planted as
 * an object, as `_metadata`, as a container or as one of its parents ends in
 * a typed store error, never in the bytes of what it points to.
 */
import { describe, expect, it } from "@effect/vitest"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { backup, layerMemoryCatalog, layerPosix, ObjectStore, restore } from "../../src/index.js"
import { patternedVolume, withTempDir, writeVolume, localServices } from "../support/layers.js"

const MiB = 1024 * 1024
const ID = "abcdef"
const CONTAINER = "ab/cd/abcdef"
const OBJECT = "volume_v_20260101000000_backup_abcdef-00001"

const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex")

/** Whether `haystack` holds `needle` anywhere. */
const contains = (haystack: Uint8Array, needle: Uint8Array) => Buffer.from(haystack).includes(Buffer.from(needle))

const posixServices = (root: string) =>
  Layer.mergeAll(layerPosix({ root }), layerMemoryCatalog()).pipe(Layer.provideMerge(localServices))

/** A temp dir with `store/` (the root) and `outside/` beside it, a store on the root. */
const withRoot = <A, E>(use: (root: string, outside: string, dir: string) => Effect.Effect<A, E, ObjectStore>) =>
  withTempDir((dir) => {
    const root = join(dir, "store")
    const outside = join(dir, "outside")
    mkdirSync(root)
    mkdirSync(outside)
    return use(root, outside, dir).pipe(Effect.provide(layerPosix({ root }).pipe(Layer.provide(NodeFileSystem.layer))))
  })

/** One zlib backup of a 3 MiB volume in 1 MiB objects; `use` gets its objects' directory and the outside dir. */
const withBackup = <A, E, R>(use: (dir: string, objectsDir: string, outside: string) => Effect.Effect<A, E, R>) =>
  withTempDir((dir) =>
    Effect.gen(function* () {
      const outside = join(dir, "outside")
      mkdirSync(outside)
      yield* writeVolume(join(dir, "vol.img"), patternedVolume(3 * MiB, 7))
      const record = yield* backup({ id: ID, volume_id: "v" }, join(dir, "vol.img"), { chunkSize: MiB, shaBlockSize: 32768, compression: "zlib" })
      return yield* use(dir, join(dir, "store", record.container!), outside)
    }).pipe(Effect.provide(posixServices(join(dir, "store"))))
  )

const objectNamed = (objectsDir: string, suffix: string) => readdirSync(objectsDir).find((name) => name.endsWith(suffix))!

/** Replaces `path` by a symlink to `target`. */
const plantLink = (target: string, path: string) => {
  rmSync(path, { recursive: true, force: true })
  symlinkSync(target, path)
}

/** The target's bytes, or none when the restore did not create it. */
const restored = (path: string) => (existsSync(path) ? readFileSync(path) : new Uint8Array(0))

const expectStoreError = (error: { readonly _tag: string; readonly message: string }, ...named: ReadonlyArray<string>) => {
  expect(error._tag).toBe("StoreError")
  for (const name of named) expect(error.message).toContain(name)
}

/** A host file outside the root, planted as the backup's second data object by a symlink. */
const linkDataObjectOutside = (objectsDir: string, outside: string) => {
  const secret = patternedVolume(MiB, 99)
  writeFileSync(join(outside, "secret"), secret)
  const name = objectNamed(objectsDir, "-00002")
  plantLink(join(outside, "secret"), join(objectsDir, name))
  return { secret, name }
}

describe("posix store: a symlink as an object", () => {
  it.effect("to a file outside the root: get fails with a StoreError naming it, not the file's bytes", () =>
    withRoot((root, outside) =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        yield* store.ensureContainer(CONTAINER)
        writeFileSync(join(outside, "secret"), "host secret")
        symlinkSync(join(outside, "secret"), join(root, CONTAINER, OBJECT))
        const error = yield* Effect.flip(store.get(CONTAINER, OBJECT))
        expectStoreError(error, CONTAINER, OBJECT, "symbolic link")
        // Listed all the same: only reading it is refused.
        expect(yield* store.list(CONTAINER, "volume_")).toEqual([OBJECT])
      })
    )
  )

  it.effect("to a file inside the root: refused too, being no regular file", () =>
    withRoot((root) =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        yield* store.ensureContainer(CONTAINER)
        yield* store.put(CONTAINER, "real", new Uint8Array([1, 2, 3]))
        symlinkSync("real", join(root, CONTAINER, OBJECT))
        expectStoreError(yield* Effect.flip(store.get(CONTAINER, OBJECT)), CONTAINER, OBJECT, "symbolic link")
        expect(Array.from(yield* store.get(CONTAINER, "real"))).toEqual([1, 2, 3])
      })
    )
  )

  it.effect("a FIFO is refused without blocking", () =>
    withRoot((root) =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        yield* store.ensureContainer(CONTAINER)
        execFileSync("mkfifo", [join(root, CONTAINER, OBJECT)])
        expectStoreError(yield* Effect.flip(store.get(CONTAINER, OBJECT)), CONTAINER, OBJECT, "not a regular file")
      })
    ), 5000
  )

  it.effect("a restore through a linked data object fails typed and writes none of the outside file", () =>
    withBackup((dir, objectsDir, outside) =>
      Effect.gen(function* () {
        const { secret, name } = linkDataObjectOutside(objectsDir, outside)
        const target = join(dir, "out.img")
        expectStoreError(yield* Effect.flip(restore(ID, target)), name, "symbolic link")
        expect(contains(restored(target), secret.subarray(0, 64 * 1024))).toBe(false)
      })
    )
  )

  it.effect("... even when the metadata's md5 and length were rewritten to the outside file's", () =>
    withBackup((dir, objectsDir, outside) =>
      Effect.gen(function* () {
        const { secret, name } = linkDataObjectOutside(objectsDir, outside)
        // The forgery: the entry now describes the outside file, stored raw.
        const metadataPath = join(objectsDir, objectNamed(objectsDir, "_metadata"))
        const metadata = JSON.parse(readFileSync(metadataPath, "utf8"))
        const entry = metadata.objects.find((item: Record<string, unknown>) => name in item)[name]
        Object.assign(entry, { md5: md5(secret), length: secret.length, compression: null })
        writeFileSync(metadataPath, JSON.stringify(metadata))
        const target = join(dir, "out.img")
        expectStoreError(yield* Effect.flip(restore(ID, target)), name, "symbolic link")
        expect(contains(restored(target), secret.subarray(0, 64 * 1024))).toBe(false)
      })
    )
  )

  it.effect("_metadata linked to a copy outside the root: the restore fails typed", () =>
    withBackup((dir, objectsDir, outside) =>
      Effect.gen(function* () {
        const name = objectNamed(objectsDir, "_metadata")
        renameSync(join(objectsDir, name), join(outside, "metadata"))
        symlinkSync(join(outside, "metadata"), join(objectsDir, name))
        expectStoreError(yield* Effect.flip(restore(ID, join(dir, "out.img"))), name, "symbolic link")
      })
    )
  )
})

/** Every operation on `container` fails with a StoreError naming it, and `outside` is left as it was. */
const expectAllRefused = (container: string, outside: string) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const before = readdirSync(outside, { recursive: true }).sort()
    expectStoreError(yield* Effect.flip(store.get(container, OBJECT)), container, "outside the store root")
    expectStoreError(yield* Effect.flip(store.list(container, "")), container, "outside the store root")
    expectStoreError(yield* Effect.flip(store.put(container, "new", new Uint8Array([9]))), container, "outside the store root")
    expectStoreError(yield* Effect.flip(store.delete(container, OBJECT)), container, "outside the store root")
    expectStoreError(yield* Effect.flip(store.ensureContainer(container)), container, "outside the store root")
    expectStoreError(yield* Effect.flip(store.removeLeftovers!(container, "")), container, "outside the store root")
    expect(store.localPath!(container, OBJECT)).toBeUndefined()
    expect(readdirSync(outside, { recursive: true }).sort()).toEqual(before)
  })

describe("posix store: a symlink leaving the root on a container's path", () => {
  it.effect("the container directory itself: every operation fails typed, nothing outside is read or changed", () =>
    withRoot((root, outside) =>
      Effect.gen(function* () {
        writeFileSync(join(outside, OBJECT), "host secret")
        mkdirSync(join(root, "ab/cd"), { recursive: true })
        symlinkSync(outside, join(root, CONTAINER))
        yield* expectAllRefused(CONTAINER, outside)
        expect(readFileSync(join(outside, OBJECT), "utf8")).toBe("host secret")
      })
    )
  )

  it.effect("a parent directory (ab/) with the container present outside: every operation fails typed", () =>
    withRoot((root, outside) =>
      Effect.gen(function* () {
        mkdirSync(join(outside, "cd/abcdef"), { recursive: true })
        writeFileSync(join(outside, "cd/abcdef", OBJECT), "host secret")
        symlinkSync(outside, join(root, "ab"))
        yield* expectAllRefused(CONTAINER, outside)
      })
    )
  )

  it.effect("a parent directory (ab/) with nothing below it outside: nothing is created there", () =>
    withRoot((root, outside) =>
      Effect.gen(function* () {
        symlinkSync(outside, join(root, "ab"))
        yield* expectAllRefused(CONTAINER, outside)
        expect(readdirSync(outside)).toEqual([])
      })
    )
  )

  it.effect("a parent directory (ab/) linking to a missing directory outside: nothing is created through it", () =>
    withRoot((root, outside) =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        symlinkSync(join(outside, "new"), join(root, "ab"))
        expect((yield* Effect.flip(store.ensureContainer(CONTAINER)))._tag).toBe("StoreError")
        expect((yield* Effect.flip(store.put(CONTAINER, OBJECT, new Uint8Array([9]))))._tag).toBe("ContainerNotFound")
        expect((yield* Effect.flip(store.get(CONTAINER, OBJECT)))._tag).toBe("ContainerNotFound")
        expect(readdirSync(outside)).toEqual([])
      })
    )
  )

  it.effect("a backup into a container whose parent links outside fails typed and writes nothing there", () =>
    withTempDir((dir) => {
      const outside = join(dir, "outside")
      mkdirSync(join(dir, "store"), { recursive: true })
      mkdirSync(outside)
      symlinkSync(outside, join(dir, "store", "ab"))
      return Effect.gen(function* () {
        yield* writeVolume(join(dir, "vol.img"), patternedVolume(MiB, 3))
        const error = yield* Effect.flip(backup({ id: ID, volume_id: "v" }, join(dir, "vol.img"), { chunkSize: MiB / 4 }))
        expectStoreError(error, CONTAINER, "outside the store root")
        expect(readdirSync(outside)).toEqual([])
      }).pipe(Effect.provide(posixServices(join(dir, "store"))))
    })
  )

  it.effect("a root that is itself a symlink works as before, worker reads included", () =>
    withTempDir((dir) => {
      mkdirSync(join(dir, "real-store"))
      symlinkSync(join(dir, "real-store"), join(dir, "store"))
      const volume = patternedVolume(2 * MiB, 5)
      return Effect.gen(function* () {
        yield* writeVolume(join(dir, "vol.img"), volume)
        yield* backup({ id: ID, volume_id: "v" }, join(dir, "vol.img"), { chunkSize: MiB, compression: "zlib" })
        const store = yield* ObjectStore
        expect(store.localPath!(CONTAINER, OBJECT)).toBe(join(dir, "store", CONTAINER, OBJECT))
        yield* restore(ID, join(dir, "out.img"))
        expect(Buffer.from(readFileSync(join(dir, "out.img"))).equals(Buffer.from(volume))).toBe(true)
      }).pipe(Effect.provide(posixServices(join(dir, "store"))))
    })
  )
})
