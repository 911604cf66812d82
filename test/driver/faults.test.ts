/**
 * The driver under injected store faults (src/store/faults.ts):
 * - transient faults behind withRetry change nothing: every chain round-trips;
 * - permanent faults end in typed errors, never an `available` record for a
 *   failed backup, and no object of a failed backup left in the store;
 * - bytes corrupted on read or truncated on write never restore silently.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, FastCheck as fc, Layer } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import {
  backup,
  BackupCatalog,
  layerMemoryCatalog,
  makeMemory,
  ObjectStore,
  restore,
  withFaults,
  withRetry,
  type BackupRecord,
  type FaultRule,
  type InjectedFault,
  type StoreOperation
} from "../../src/index.js"
import { applyEdits, compressionName, edits, sizes, volumeBytes } from "../../src/testing/index.js"
import { storeSnapshot, typedFailure } from "../support/inspect.js"
import { withTempDir, writeVolume, localServices } from "../support/layers.js"

const CONTAINER = "volumebackups" // the memory store's default
const operations: ReadonlyArray<StoreOperation> = ["ensureContainer", "list", "put", "get", "delete"]
const fastRetry = { attempts: 30, baseDelay: "1 millis", maxDelay: "4 millis", maxElapsed: "1 minute" } as const
const isDataObject = (name: string) => /-\d{5,}$/.test(name)
/** Object names embed the backup's second: pinned, a fast-check seed replays the same faults. */
const now = new Date("2026-03-04T05:06:07Z")

/** A store wrapped as `wrap(inner)`, a memory catalog and the FileSystem. */
const servicesOver = (store: ObjectStore) =>
  Layer.mergeAll(Layer.succeed(ObjectStore, store), layerMemoryCatalog(), localServices)

/** The chain of backups the properties run: a full one, then incrementals. */
const chainArbitrary = (maxIncrementals: number) =>
  fc.record({
    initial: volumeBytes(40 * 1024),
    sizes,
    firstCompression: compressionName,
    steps: fc.array(fc.record({ edits, compression: compressionName }), { maxLength: maxIncrementals })
  })

/**
 * The data objects of `id`'s chain whose bytes are not all covered by newer
 * objects of the chain: the ones a restore must read.
 */
const visibleObjects = (store: ObjectStore, id: string) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const chain: Array<Array<{ name: string; offset: number; length: number }>> = []
    for (let next: string | null = id; next !== null; ) {
      const record: BackupRecord = yield* catalog.get(next)
      next = record.parent_id
      const text = new TextDecoder().decode(yield* store.get(record.container!, `${record.service_metadata}_metadata`))
      const objects = (JSON.parse(text) as { objects: Array<Record<string, { offset: number; length: number }>> }).objects
      chain.push(objects.flatMap((item) => Object.entries(item).map(([name, { offset, length }]) => ({ name, offset, length }))))
    }
    // chain[0] is the newest backup; a byte belongs to the first object covering it.
    const visible = new Set<string>()
    chain.forEach((objects, i) => {
      const newer = chain.slice(0, i).flat()
      for (const object of objects) {
        for (let at = object.offset; at < object.offset + object.length; at++) {
          if (!newer.some((n) => n.offset <= at && at < n.offset + n.length)) {
            visible.add(object.name)
            break
          }
        }
      }
    })
    return visible
  })

let transientFaultsSeen = 0

describe("driver under injected store faults", () => {
  it.live.prop(
    "transient faults (≤ 20 % of every operation) behind withRetry: every backup and restore round-trips exactly",
    [
      chainArbitrary(3),
      fc.nat(),
      fc.record(Object.fromEntries(operations.map((op) => [op, fc.integer({ min: 0, max: 20 }).map((percent) => percent / 100)])) as Record<StoreOperation, fc.Arbitrary<number>>)
    ],
    ([{ initial, sizes: { chunkSize, shaBlockSize }, firstCompression, steps }, seed, rates]) => {
      const inner = Effect.runSync(makeMemory())
      const faults: Array<InjectedFault> = []
      const rules: Array<FaultRule> = operations.map((op) => ({ kind: "transient", operations: [op], rate: rates[op] }))
      const store = withRetry(withFaults(inner, { seed, rules, onFault: (f) => void faults.push(f) }), fastRetry)
      return withTempDir((dir) =>
        Effect.gen(function* () {
          const catalog = yield* BackupCatalog
          const volumePath = join(dir, "volume.img")
          let state: Uint8Array = initial
          yield* writeVolume(volumePath, state)
          let last = yield* backup({ id: "b0", volume_id: "v" }, volumePath, { chunkSize, shaBlockSize, compression: firstCompression, now })
          for (const [i, step] of steps.entries()) {
            state = applyEdits(state, step.edits)
            yield* writeVolume(volumePath, state)
            last = yield* backup({ id: `b${i + 1}`, volume_id: "v", parent_id: last.id }, volumePath, {
              chunkSize,
              shaBlockSize,
              compression: step.compression,
              now
            })
          }
          const target = join(dir, "restored.img")
          yield* restore(last.id, target)
          expect(Buffer.from(readFileSync(target)).equals(Buffer.from(state))).toBe(true)
          // Every backup is available with exactly its objects and two documents, no leftovers.
          for (const record of yield* catalog.list()) {
            expect(record.status).toBe("available")
            expect((yield* inner.list(CONTAINER, record.service_metadata!)).length).toBe(record.object_count + 2)
          }
          transientFaultsSeen += faults.length
        })
      ).pipe(Effect.provide(servicesOver(store)))
    },
    { fastCheck: { numRuns: 60 } }
  )

  it("the transient property did inject faults", () => {
    expect(transientFaultsSeen).toBeGreaterThan(100)
  })

  it.live.prop(
    "permanent faults: typed errors, a failed backup is never available and leaves no object behind",
    [
      chainArbitrary(2),
      fc.nat(),
      fc.constantFrom(...operations),
      fc.constantFrom("all", "data", "metadata", "sha256file", "one data object"),
      fc.integer({ min: 1, max: 6 }),
      fc.constantFrom(0.3, 0.7, 1)
    ],
    ([{ initial, sizes: { chunkSize, shaBlockSize }, firstCompression, steps }, seed, operation, target, index, rate]) => {
      const inner = Effect.runSync(makeMemory())
      const faults: Array<InjectedFault> = []
      const objects = (name: string) =>
        target === "all" ||
        (target === "data" && isDataObject(name)) ||
        (target === "metadata" && name.endsWith("_metadata")) ||
        (target === "sha256file" && name.endsWith("_sha256file")) ||
        (target === "one data object" && name.endsWith(`-${String(index).padStart(5, "0")}`))
      const rule: FaultRule = { kind: "permanent", operations: [operation], objects, rate }
      const store = withFaults(inner, { seed, rules: [rule], onFault: (f) => void faults.push(f) })
      return withTempDir((dir) =>
        Effect.gen(function* () {
          const catalog = yield* BackupCatalog
          const volumePath = join(dir, "volume.img")
          let state: Uint8Array = initial
          let restorable: { readonly id: string; readonly bytes: Uint8Array } | undefined
          let failures = 0
          for (const [i, step] of [{ edits: [], compression: firstCompression }, ...steps].entries()) {
            state = applyEdits(state, step.edits)
            yield* writeVolume(volumePath, state)
            const id = `b${i}`
            const parent = restorable === undefined ? {} : { parent_id: restorable.id }
            const exit = yield* Effect.exit(
              backup({ id, volume_id: "v", ...parent }, volumePath, { chunkSize, shaBlockSize, compression: step.compression, now })
            )
            const record = yield* catalog.get(id)
            if (Exit.isSuccess(exit)) {
              expect(record.status).toBe("available")
              restorable = { id, bytes: state }
              continue
            }
            failures++
            const error = typedFailure(exit)
            expect(error._tag).toBe("StoreError")
            expect(error.message).toContain("injected permanent fault")
            expect(record.status).toBe("error")
            // Nothing of the failed backup is left in the undecorated store.
            const left = yield* Effect.either(inner.list(CONTAINER, ""))
            const mine = left._tag === "Right" ? left.right.filter((name) => name.includes(`_backup_${id}`)) : []
            expect(mine).toEqual([])
          }
          if (restorable !== undefined) {
            const before = yield* storeSnapshot(inner, [CONTAINER])
            const exit = yield* Effect.exit(restore(restorable.id, join(dir, "restored.img")))
            if (Exit.isSuccess(exit)) {
              expect(Buffer.from(readFileSync(join(dir, "restored.img"))).equals(Buffer.from(restorable.bytes))).toBe(true)
            } else {
              failures++
              const error = typedFailure(exit)
              expect(error._tag).toBe("StoreError")
              expect(error.message).toContain("injected permanent fault")
            }
            // A restore, failed or not, hands the status back and writes nothing to the store.
            expect((yield* catalog.get(restorable.id)).status).toBe("available")
            expect(yield* storeSnapshot(inner, [CONTAINER])).toStrictEqual(before)
          }
          // Failures come only from injected faults.
          if (failures > 0) expect(faults.length).toBeGreaterThan(0)
        })
      ).pipe(Effect.provide(servicesOver(store)))
    },
    { fastCheck: { numRuns: 80 } }
  )

  it.effect.prop(
    "bytes corrupted on read or truncated on write: restore fails with IntegrityError or CompressionError naming the object",
    [
      chainArbitrary(2),
      fc.nat(),
      fc.constantFrom("corrupt" as const, "truncate" as const),
      fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
      fc.constantFrom(0.3, 1)
    ],
    ([{ initial, sizes: { chunkSize, shaBlockSize }, firstCompression, steps }, seed, kind, index, rate]) => {
      const inner = Effect.runSync(makeMemory())
      const faults: Array<InjectedFault> = []
      const objects = (name: string) =>
        isDataObject(name) && (index === undefined || name.endsWith(`-${String(index).padStart(5, "0")}`))
      const store = withFaults(inner, { seed, rules: [{ kind, objects, rate }], onFault: (f) => void faults.push(f) })
      return withTempDir((dir) =>
        Effect.gen(function* () {
          const catalog = yield* BackupCatalog
          const volumePath = join(dir, "volume.img")
          let state: Uint8Array = initial
          let last = "none"
          for (const [i, step] of [{ edits: [], compression: firstCompression }, ...steps].entries()) {
            state = applyEdits(state, step.edits)
            yield* writeVolume(volumePath, state)
            const parent = i === 0 ? {} : { parent_id: last }
            // Truncation is silent: every backup reports success.
            last = (yield* backup({ id: `b${i}`, volume_id: "v", ...parent }, volumePath, {
              chunkSize,
              shaBlockSize,
              compression: step.compression,
              now
            })).id
          }
          const before = yield* storeSnapshot(inner, [CONTAINER])
          const truncated = faults.map((f) => f.object) // all written by the backups above
          const visible = yield* visibleObjects(inner, last)
          const target = join(dir, "restored.img")
          const exit = yield* Effect.exit(restore(last, target))
          const damaged = new Set(faults.map((f) => f.object))
          // A truncated object whose bytes reach the volume must fail the restore (one that newer
          // objects cover entirely need not be read). A corrupt read fails it too, unless the byte
          // changed nothing that decodes: a flipped padding bit after a deflate stream's last block
          // (seen: byte 20 of a 26-byte zlib object) inflates to the same bytes, whose md5 and
          // sha256s match. Whatever the fault, a restore that succeeds wrote the volume exactly.
          const mustFail = truncated.some((name) => visible.has(name))
          if (Exit.isSuccess(exit)) {
            expect(mustFail).toBe(false)
            expect(Buffer.from(readFileSync(target)).equals(Buffer.from(state))).toBe(true)
          } else {
            const error = typedFailure(exit)
            expect(["IntegrityError", "CompressionError"]).toContain(error._tag)
            const object = (error as { readonly object?: string }).object
            expect(object !== undefined && damaged.has(object)).toBe(true)
            expect(error.message).toContain(object)
          }
          expect((yield* catalog.get(last)).status).toBe("available")
          expect(yield* storeSnapshot(inner, [CONTAINER])).toStrictEqual(before)
        })
      ).pipe(Effect.provide(servicesOver(store)))
    },
    { fastCheck: { numRuns: 100 } }
  )
})

describe("a failed backup whose clean-up fails too", () => {
  // A permanent put failure, then every delete of the clean-up fails as well:
  // the objects cannot be removed, but the record must not stay `creating`
  // (nothing would ever finish it); it ends `error`, saying what was left.
  it.effect("ends in status error, not creating", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const path = join(dir, "volume.img")
        yield* writeVolume(path, Uint8Array.from({ length: 20_000 }, (_, i) => (i * 7919) % 251))
        const exit = yield* Effect.exit(
          backup({ id: "b", volume_id: "v" }, path, { chunkSize: 4096, shaBlockSize: 1024, concurrency: 1 })
        )
        expect(typedFailure(exit)._tag).toBe("StoreError")
        const record = yield* (yield* BackupCatalog).get("b")
        // Its objects could not be deleted: error_deleting until a cleanup deletes them.
        expect(record.status).toBe("error_deleting")
        expect(record.fail_reason).toContain("-00003")
      })
    ).pipe(
      Effect.provide(
        servicesOver(
          withFaults(Effect.runSync(makeMemory()), {
            seed: 1,
            rules: [
              { kind: "permanent", operations: ["put"], objects: (name) => name.endsWith("-00003") },
              { kind: "permanent", operations: ["delete"] }
            ]
          })
        )
      )
    )
  )
})
