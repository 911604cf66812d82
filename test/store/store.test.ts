import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { readdirSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { layerMemory, layerPosix, ObjectStore, type PosixStoreOptions } from "../../src/index.js"
import { objectStoreConformance } from "../../src/testing/index.js"

/** A posix store in a fresh temp directory, removed when the test ends. */
const posixInTemp = (options: Omit<PosixStoreOptions, "root"> = {}) =>
  Layer.unwrapScoped(
    Effect.map(
      Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix: "cb-store-" })),
      (root) => layerPosix({ ...options, root })
    )
  ).pipe(Layer.provide(NodeFileSystem.layer))

objectStoreConformance("memory", layerMemory(), {
  slashInObjectNames: true,
  refusingLayer: layerMemory({ createContainers: false })
})

objectStoreConformance("posix", posixInTemp(), {
  slashInObjectNames: false,
  refusingLayer: posixInTemp({ createContainers: false })
})

describe("posix store specifics", () => {
  const withRoot = <A, E>(f: (root: string) => Effect.Effect<A, E, ObjectStore>) =>
    Effect.scoped(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const root = yield* fs.makeTempDirectoryScoped({ prefix: "cb-posix-" })
        return yield* f(root).pipe(Effect.provide(layerPosix({ root })))
      })
    ).pipe(Effect.provide(NodeFileSystem.layer))

  it.effect("uses Cinder's layout and modes: container dirs 0770, objects 0660", () =>
    withRoot((root) =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        yield* store.ensureContainer("ab/cd/abcdef")
        yield* store.put("ab/cd/abcdef", "volume_v_20260101000000_backup_abcdef-00001", new Uint8Array([1, 2]))
        expect(statSync(join(root, "ab/cd/abcdef")).mode & 0o777).toBe(0o770)
        expect(statSync(join(root, "ab/cd/abcdef", "volume_v_20260101000000_backup_abcdef-00001")).mode & 0o777).toBe(0o660)
      })
    )
  )

  it.effect("object names cannot contain '/' or exceed 255 bytes", () =>
    withRoot(() =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        yield* store.ensureContainer("c")
        expect((yield* Effect.flip(store.put("c", "a/b", new Uint8Array(1))))._tag).toBe("InvalidObjectName")
        expect((yield* Effect.flip(store.put("c", "x".repeat(256), new Uint8Array(1))))._tag).toBe("InvalidObjectName")
      })
    )
  )

  it.live("an interrupted write leaves no temp file and no object", () =>
    withRoot((root) =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        yield* store.ensureContainer("c")
        const fiber = yield* Effect.fork(store.put("c", "big", new Uint8Array(256 * 1024 * 1024)))
        yield* Effect.sleep(20)
        yield* Fiber.interrupt(fiber)
        const left = readdirSync(join(root, "c"))
        expect(left.filter((n) => n !== "big")).toEqual([])
      })
    )
  )

  it.effect("removeLeftovers removes temp files that a killed writer left under a prefix, and nothing else", () =>
    withRoot((root) =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        yield* store.ensureContainer("c")
        yield* store.put("c", "pre-00001", new Uint8Array([1]))
        writeFileSync(join(root, "c", ".chunked-backup-tmp-pre-00002.0123456789abcdef"), "partial")
        writeFileSync(join(root, "c", ".chunked-backup-tmp-other-00001.0123456789abcdef"), "partial")
        expect(yield* store.list("c", "pre")).toEqual(["pre-00001"])
        expect(yield* store.removeLeftovers!("c", "pre")).toBe(1)
        expect(readdirSync(join(root, "c")).sort()).toEqual([".chunked-backup-tmp-other-00001.0123456789abcdef", "pre-00001"])
      })
    )
  )

  it.effect("the default container is id[0:2]/id[2:4]/id", () =>
    withRoot(() =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        const container = store.containerFor({ id: "abcdef12-3456" } as never)
        expect(container).toBe("ab/cd/abcdef12-3456")
      })
    )
  )
})
