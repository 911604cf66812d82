/**
 * Many backups at once on one store and one catalog: the posix store in a
 * temp directory and the SQLite catalog in a temp file, as the CLI uses them.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import {
  backup,
  BackupCatalog,
  layerConcurrencyLimit,
  layerFaults,
  layerPosix,
  layerRetry,
  layerSqliteCatalog,
  ObjectStore,
  restore,
  type InjectedFault
} from "../../src/index.js"
import { applyEdits } from "../../src/testing/index.js"
import { withTempDir, writeVolume, localServices } from "../support/layers.js"

const VOLUMES = 8
const compressions = ["zlib", "bz2", "zstd", "none"] as const
const options = (i: number) => ({ chunkSize: 8192, shaBlockSize: 1024, compression: compressions[i % compressions.length]!, concurrency: 2 })

const pattern = (size: number, seed: number) => {
  const bytes = new Uint8Array(size)
  let x = seed
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    bytes[i] = i % 5000 < 2000 ? 0 : x >>> 24
  }
  return bytes
}

/** Volumes 0..7: distinct sizes and contents. */
const volumes = (dir: string) =>
  Array.from({ length: VOLUMES }, (_, i) => ({
    i,
    path: join(dir, `vol${i}.img`),
    bytes: pattern(200_000 + i * 37_777, i + 1) as Uint8Array
  }))

const sameBytes = (path: string, expected: Uint8Array) => Buffer.from(readFileSync(path)).equals(Buffer.from(expected))

/**
 * 8 full backups at once; then 8 incrementals at once; then the 8 fulls and
 * the 8 incrementals restored at once. Returns the catalog's records.
 */
const scenario = (dir: string) =>
  Effect.gen(function* () {
    const vols = volumes(dir)
    for (const v of vols) yield* writeVolume(v.path, v.bytes)
    const running = { now: 0, max: 0 }
    const counted = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => (running.max = Math.max(running.max, ++running.now))),
        () => effect,
        () => Effect.sync(() => running.now--)
      )
    const fulls = yield* Effect.all(
      vols.map((v) => counted(backup({ id: `full-${v.i}`, volume_id: `vol-${v.i}` }, v.path, options(v.i)))),
      { concurrency: "unbounded" }
    )
    expect(fulls.map((r) => r.status)).toEqual(Array(VOLUMES).fill("available"))
    // They did run side by side.
    expect(running.max).toBe(VOLUMES)

    const edited = vols.map((v) => ({
      ...v,
      next: applyEdits(v.bytes, [
        { at: 0.1 + v.i / 20, length: 3000, byte: v.i + 1 },
        { at: 0.9, length: 100, byte: 0xaa }
      ])
    }))
    for (const v of edited) yield* writeVolume(v.path, v.next)
    // (An incremental refuses a parent that is being restored, as Cinder does, so these come first.)
    yield* Effect.all(
      edited.map((v) => backup({ id: `inc-${v.i}`, volume_id: `vol-${v.i}`, parent_id: `full-${v.i}` }, v.path, options(v.i + 1))),
      { concurrency: "unbounded" }
    )
    // All 16 restores at once: each full both on its own and as the base of its incremental.
    yield* Effect.all(
      [
        ...vols.map((v) => restore(`full-${v.i}`, join(dir, `full-${v.i}.out`), { volumeIsNew: true })),
        ...edited.map((v) => restore(`inc-${v.i}`, join(dir, `inc-${v.i}.out`)))
      ],
      { concurrency: "unbounded" }
    )
    for (const v of edited) {
      expect(sameBytes(join(dir, `full-${v.i}.out`), v.bytes)).toBe(true)
      expect(sameBytes(join(dir, `inc-${v.i}.out`), v.next)).toBe(true)
    }

    // Every record is available, and the store holds exactly each backup's objects.
    const catalog = yield* BackupCatalog
    const store = yield* ObjectStore
    const records = yield* catalog.list()
    expect(records).toHaveLength(2 * VOLUMES)
    for (const record of records) {
      expect(record.status).toBe("available")
      expect(record.lease_expires_at).toBeNull()
      expect((yield* store.list(record.container!, record.service_metadata!)).length).toBe(record.object_count + 2)
    }
    return records
  })

const sqliteAndPosix = (dir: string, store: (posix: Layer.Layer<ObjectStore>) => Layer.Layer<ObjectStore> = (s) => s) =>
  Layer.mergeAll(
    store(layerPosix({ root: join(dir, "store") }).pipe(Layer.provide(NodeFileSystem.layer))),
    layerSqliteCatalog(join(dir, "catalog.sqlite")),
    localServices
  )

describe("concurrent backups on one posix store and one SQLite catalog", () => {
  it.live(`${VOLUMES} backups of different volumes in parallel all complete and restore correctly`, () =>
    withTempDir((dir) => Effect.asVoid(scenario(dir)).pipe(Effect.provide(sqliteAndPosix(dir)))),
    120_000
  )

  it.live("the same, through transient faults, withRetry and a shared limit of 3 store calls", () =>
    withTempDir((dir) => {
      const faults: Array<InjectedFault> = []
      const gauge = { now: 0, max: 0 }
      // Counts calls in flight between the limit and the retrying store below it.
      const gauged = (store: ObjectStore): ObjectStore => {
        const track = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.acquireUseRelease(
            Effect.sync(() => (gauge.max = Math.max(gauge.max, ++gauge.now))),
            () => effect,
            () => Effect.sync(() => gauge.now--)
          )
        return {
          ...store,
          ensureContainer: (c) => track(store.ensureContainer(c)),
          list: (c, p) => track(store.list(c, p)),
          put: (c, o, b, x) => track(store.put(c, o, b, x)),
          get: (c, o, x) => track(store.get(c, o, x)),
          delete: (c, o) => track(store.delete(c, o))
        }
      }
      const decorate = (posix: Layer.Layer<ObjectStore>) =>
        layerConcurrencyLimit(3).pipe(
          Layer.provide(Layer.effect(ObjectStore, Effect.map(ObjectStore, gauged))),
          Layer.provide(layerRetry({ attempts: 30, baseDelay: "1 millis", maxDelay: "5 millis" })),
          Layer.provide(layerFaults({ seed: 2026, rules: [{ kind: "transient", rate: 0.15 }], onFault: (f) => void faults.push(f) })),
          Layer.provide(posix)
        )
      return Effect.gen(function* () {
        yield* scenario(dir)
        expect(faults.length).toBeGreaterThan(20)
        expect(gauge.max).toBeLessThanOrEqual(3)
        expect(gauge.max).toBe(3)
      }).pipe(Effect.provide(sqliteAndPosix(dir, decorate)))
    }),
    120_000
  )
})
