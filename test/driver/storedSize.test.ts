/**
 * Stored bytes and compression ratio from the store's listing, on every
 * backend (the Swift and S3 ones on the loopback Swift), checked against the
 * objects' bytes as read back; and the cases that make them unknown.
 */
import { describe, expect, it } from "@effect/vitest"
import { NodeFileSystem } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { join } from "node:path"
import { backup, layerPosix, ObjectStore, storedSizeOf, withFaults, type BackupRecord } from "../../src/index.js"
import { dataObjects } from "../../src/domain/documents.js"
import { readMetadata } from "../../src/driver/objects.js"
import { memoryServices, patternedVolume, tamper, withTempDir, wrapStore, writeVolume } from "../support/layers.js"
import { loopback, s3Store, servicesOn, SKIP_REASON, swiftStore, uniqueContainer } from "../support/swift.js"

/** A full backup and an incremental on it, into `container` (the store's default when undefined). */
const fullAndIncremental = (dir: string, container?: string) =>
  Effect.gen(function* () {
    const path = join(dir, "volume.img")
    const options = { chunkSize: 8192, shaBlockSize: 1024, compression: "zlib" }
    const where = container === undefined ? {} : { container }
    yield* writeVolume(path, patternedVolume(64 * 1024, 3))
    const full = yield* backup({ id: "sized-full-0000", volume_id: "v", ...where }, path, options)
    yield* writeVolume(path, patternedVolume(64 * 1024, 4))
    const incr = yield* backup({ id: "sized-incr-0000", volume_id: "v", parent_id: full.id, ...where }, path, options)
    return [full, incr] as const
  })

/** What the listing should say, from the objects' bytes as `get` returns them. */
const expectedFrom = (record: BackupRecord) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const names = yield* store.list(record.container!, record.service_metadata!)
    const sizes = new Map<string, number>()
    for (const name of names) sizes.set(name, (yield* store.get(record.container!, name)).length)
    const data = dataObjects(yield* readMetadata(record))
    const storedData = data.reduce((s, o) => s + sizes.get(o.name)!, 0)
    return { storedBytes: [...sizes.values()].reduce((s, n) => s + n, 0), ratio: data.reduce((s, o) => s + o.length, 0) / storedData }
  })

const matchesTheObjects = (dir: string, container?: string) =>
  Effect.gen(function* () {
    for (const record of yield* fullAndIncremental(dir, container)) {
      const size = yield* storedSizeOf(record)
      const expected = yield* expectedFrom(record)
      expect(size).toMatchObject({ source: "store listing", storedBytes: expected.storedBytes })
      expect(size.source === "store listing" && size.ratio).toBeCloseTo(expected.ratio, 9)
    }
  })

describe("stored size", () => {
  it.effect("memory: the listing's sizes are the objects' bytes; the ratio is the metadata's lengths over the data objects' bytes", () =>
    withTempDir((dir) => matchesTheObjects(dir)).pipe(Effect.provide(memoryServices()))
  )

  it.effect("posix: sizes by stat", () =>
    withTempDir((dir) => matchesTheObjects(dir).pipe(Effect.provide(servicesOn(layerPosix({ root: join(dir, "store") }).pipe(Layer.provide(NodeFileSystem.layer))))))
  )

  describe.skipIf(loopback === undefined)(`on the loopback Swift (${loopback === undefined ? SKIP_REASON : "running"})`, () => {
    it.effect("Swift: sizes from the JSON container listing", () =>
      withTempDir((dir) => matchesTheObjects(dir, uniqueContainer("size"))).pipe(Effect.provide(servicesOn(swiftStore(loopback!))))
    )
    it.effect("S3: sizes from ListObjectsV2", () =>
      withTempDir((dir) => matchesTheObjects(dir, uniqueContainer("size"))).pipe(Effect.provide(servicesOn(s3Store(loopback!))))
    )
  })

  it.effect("unknown, with the reason, when the store gives no sizes, its listing fails, or the record names no objects; a bad metadata leaves the bytes known and the ratio unknown", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const [full] = yield* fullAndIncremental(dir)
        const noSizes = wrapStore(({ listSizes: _, ...store }) => store as ObjectStore)
        expect(yield* noSizes(storedSizeOf(full))).toEqual({ source: "unknown", reason: expect.stringMatching(/memory store's listing gives no sizes/) })
        const failing = wrapStore((store) => withFaults(store, { seed: 1, rules: [{ kind: "permanent", operations: ["list"], objects: () => true }] }))
        expect(yield* failing(storedSizeOf(full))).toEqual({ source: "unknown", reason: expect.stringMatching(/^listing failed: .*injected permanent fault/) })
        expect(yield* storedSizeOf({ ...full, container: null })).toEqual({ source: "unknown", reason: "the record names no objects" })
        yield* tamper(full.id, "_metadata", () => new TextEncoder().encode("{not json"))
        expect(yield* storedSizeOf(full)).toMatchObject({ source: "store listing", ratio: null, ratioUnknown: expect.stringMatching(/metadata unreadable/) })
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})

