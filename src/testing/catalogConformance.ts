/**
 * The BackupCatalog conformance suite: every catalog layer must pass it. Call
 * it with a name and a Layer that provides a fresh, empty catalog per test.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Layer, Queue, Stream } from "effect"
import { BackupCatalog, type BackupRecord, type BackupStatus, dependentsOf, newBackupRecord } from "../index.js"

/** Every field set, dates with millisecond precision. */
const fullRecord = (id: string): BackupRecord => ({
  id,
  volume_id: "vol-1",
  parent_id: "parent-0",
  container: "ab/cd/abcdef",
  service_metadata: "volume_vol-1/20260304050607/az_nova_backup_" + id,
  status: "available",
  size: 2,
  volume_size_bytes: 1_610_612_736,
  object_count: 37,
  display_name: "nightly ✓",
  display_description: "with 'quotes' and \"double\" quotes",
  created_at: new Date("2026-03-04T05:06:07.891Z"),
  updated_at: new Date("2026-03-04T06:07:08.912Z"),
  availability_zone: "nova",
  service: "cinder.backup.drivers.posix.PosixBackupDriver",
  fail_reason: "an earlier attempt failed",
  lease_expires_at: new Date("2026-03-04T06:08:09.123Z")
})

const at = (iso: string) => new Date(iso)

/** Registers the BackupCatalog conformance suite for `layer`: call it at a test file's top level. */
export const catalogConformance = (name: string, layer: Layer.Layer<BackupCatalog, unknown>) =>
  describe(`BackupCatalog conformance: ${name}`, () => {
    const run = <A, E>(program: Effect.Effect<A, E, BackupCatalog>) => program.pipe(Effect.provide(layer))

    it.effect("create then get returns every field, including nulls and dates", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        const full = fullRecord("b-full")
        const sparse = newBackupRecord({ id: "b-sparse", volume_id: "vol-2", volume_size_bytes: 1 })
        yield* catalog.create(full)
        yield* catalog.create(sparse)
        expect(yield* catalog.get("b-full")).toEqual(full)
        const got = yield* catalog.get("b-sparse")
        expect(got).toEqual(sparse)
        expect(got.parent_id).toBeNull()
        expect(got.updated_at).toBeNull()
        expect(got.created_at).toBeInstanceOf(Date)
        expect(got.created_at.getTime()).toBe(sparse.created_at.getTime())
      })))

    it.effect("create fails with CatalogError when the id exists, keeping the stored record", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        const original = fullRecord("b1")
        yield* catalog.create(original)
        const error = yield* Effect.flip(catalog.create({ ...original, volume_id: "other" }))
        expect(error._tag).toBe("CatalogError")
        expect(error.backupId).toBe("b1")
        expect(yield* catalog.get("b1")).toEqual(original)
      })))

    it.effect("get of an unknown id fails with BackupNotFound", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        const error = yield* Effect.flip(catalog.get("missing"))
        expect(error._tag).toBe("BackupNotFound")
        expect(error).toMatchObject({ backupId: "missing" })
      })))

    it.effect("list returns all records, or one volume's, ordered by created_at", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        expect(yield* catalog.list()).toEqual([])
        const make = (id: string, volume_id: string, created: string) =>
          newBackupRecord({ id, volume_id, volume_size_bytes: 1, created_at: at(created) })
        yield* catalog.create(make("c", "v1", "2026-01-03T00:00:00.000Z"))
        yield* catalog.create(make("a", "v2", "2026-01-01T00:00:00.000Z"))
        yield* catalog.create(make("b", "v1", "2026-01-02T00:00:00.500Z"))
        yield* catalog.create(make("d", "v1", "2026-01-02T00:00:00.499Z"))
        expect((yield* catalog.list()).map((r) => r.id)).toEqual(["a", "d", "b", "c"])
        expect((yield* catalog.list({ volumeId: "v1" })).map((r) => r.id)).toEqual(["d", "b", "c"])
        expect(yield* catalog.list({ volumeId: "v3" })).toEqual([])
        expect((yield* catalog.list({}))).toHaveLength(4)
      })))

    it.effect("list filters by status, alone or with a volume, in creation order", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        const make = (id: string, volume_id: string, status: BackupStatus, created: string) =>
          newBackupRecord({ id, volume_id, volume_size_bytes: 1, status, created_at: at(created) })
        yield* catalog.create(make("c", "v1", "creating", "2026-01-03T00:00:00.000Z"))
        yield* catalog.create(make("a", "v2", "creating", "2026-01-01T00:00:00.000Z"))
        yield* catalog.create(make("b", "v1", "available", "2026-01-02T00:00:00.000Z"))
        yield* catalog.create(make("d", "v1", "error", "2026-01-04T00:00:00.000Z"))
        const ids = (records: ReadonlyArray<{ readonly id: string }>) => records.map((r) => r.id)
        expect(ids(yield* catalog.list({ statuses: ["creating"] }))).toEqual(["a", "c"])
        expect(ids(yield* catalog.list({ statuses: ["error", "creating"] }))).toEqual(["a", "c", "d"])
        expect(ids(yield* catalog.list({ volumeId: "v1", statuses: ["creating", "available"] }))).toEqual(["b", "c"])
        expect(ids(yield* catalog.list({ volumeId: "v2", statuses: ["available"] }))).toEqual([])
        expect(yield* catalog.list({ statuses: [] })).toEqual([])
        expect(ids(yield* catalog.list({ statuses: ["deleted"] }))).toEqual([])
      })))

    it.effect("update applies the change, stores it and stamps updated_at", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        const original = newBackupRecord({ id: "u1", volume_id: "v", volume_size_bytes: 10 })
        yield* catalog.create(original)
        const before = Date.now()
        const returned = yield* catalog.update("u1", (r) => ({
          ...r,
          object_count: 7,
          container: "c/1",
          service_metadata: "prefix",
          display_name: null
        }))
        expect(returned).toMatchObject({ id: "u1", object_count: 7, container: "c/1", service_metadata: "prefix" })
        const stored = yield* catalog.get("u1")
        expect({ ...stored, updated_at: null }).toEqual({
          ...original,
          object_count: 7,
          container: "c/1",
          service_metadata: "prefix",
          display_name: null
        })
        expect(stored.updated_at?.getTime()).toBeGreaterThanOrEqual(before)
        expect((yield* Effect.flip(catalog.update("nope", (r) => r)))._tag).toBe("BackupNotFound")
      })))

    it.effect("concurrent updates are not lost", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        yield* catalog.create(newBackupRecord({ id: "n", volume_id: "v", volume_size_bytes: 1 }))
        yield* Effect.all(
          Array.from({ length: 25 }, () => catalog.update("n", (r) => ({ ...r, object_count: r.object_count + 1 }))),
          { concurrency: "unbounded", discard: true }
        )
        expect((yield* catalog.get("n")).object_count).toBe(25)
      })))

    it.effect("transition is a compare-and-set on the status", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        yield* catalog.create(newBackupRecord({ id: "t", volume_id: "v", volume_size_bytes: 1 }))
        expect(yield* catalog.transition("t", ["creating"], "available")).toBe(true)
        const available = yield* catalog.get("t")
        expect(available.status).toBe("available")
        expect(available.fail_reason).toBeNull()
        expect(available.updated_at).not.toBeNull()

        // from does not match: false, nothing changes
        expect(yield* catalog.transition("t", ["creating", "deleting"], "error", "boom")).toBe(false)
        expect(yield* catalog.get("t")).toEqual(available)
        expect(yield* catalog.transition("t", [], "error")).toBe(false)
        expect(yield* catalog.get("t")).toEqual(available)

        expect(yield* catalog.transition("t", ["available", "restoring"], "error", "boom")).toBe(true)
        expect(yield* catalog.get("t")).toMatchObject({ status: "error", fail_reason: "boom" })
        // without a reason the previous one stays
        expect(yield* catalog.transition("t", ["error"], "deleting")).toBe(true)
        expect(yield* catalog.get("t")).toMatchObject({ status: "deleting", fail_reason: "boom" })

        expect((yield* Effect.flip(catalog.transition("nope", ["creating"], "available")))._tag).toBe("BackupNotFound")
      })))

    it.effect("only one of several concurrent identical transitions wins", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        yield* catalog.create(newBackupRecord({ id: "race", volume_id: "v", volume_size_bytes: 1 }))
        const results = yield* Effect.all(
          Array.from({ length: 10 }, () => catalog.transition("race", ["creating"], "deleting")),
          { concurrency: "unbounded" }
        )
        expect(results.filter((won) => won)).toHaveLength(1)
      })))

    it.effect("remove deletes a record only in one of the given statuses", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        yield* catalog.create(newBackupRecord({ id: "r", volume_id: "v", volume_size_bytes: 1 }))
        expect(yield* catalog.remove("r", ["available", "error"])).toBe(false)
        expect(yield* catalog.remove("r", [])).toBe(false)
        expect((yield* catalog.get("r")).status).toBe("creating")
        expect(yield* catalog.remove("r", ["creating"])).toBe(true)
        expect((yield* Effect.flip(catalog.get("r")))._tag).toBe("BackupNotFound")
        expect(yield* catalog.list()).toEqual([])
        // gone, or never there: nothing to remove
        expect(yield* catalog.remove("r", ["creating"])).toBe(false)
        // the id can be used again
        yield* catalog.create(newBackupRecord({ id: "r", volume_id: "v", volume_size_bytes: 2 }))
        expect((yield* catalog.get("r")).volume_size_bytes).toBe(2)
      })))

    it.live("watch of a removed record ends", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        yield* catalog.create(newBackupRecord({ id: "w", volume_id: "v", volume_size_bytes: 1 }))
        const seen = yield* Effect.fork(Stream.runCollect(catalog.watch("w")))
        yield* Effect.sleep("50 millis")
        yield* catalog.remove("w", ["creating"])
        const statuses = yield* Fiber.join(seen).pipe(Effect.timeout("5 seconds"))
        expect(Chunk.toReadonlyArray(statuses)).toEqual(["creating"])
      })))

    it.live("watch emits the current status, then each change, without repeats", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        yield* catalog.create(newBackupRecord({ id: "w", volume_id: "v", volume_size_bytes: 1 }))
        const seen = yield* Queue.unbounded<BackupStatus>()
        const fiber = yield* Effect.fork(Stream.runForEach(catalog.watch("w"), (s) => Queue.offer(seen, s)))
        const next = Effect.timeoutFail(Queue.take(seen), { duration: "2 seconds", onTimeout: () => "no status within 2 s" })

        expect(yield* next).toBe("creating")
        yield* catalog.transition("w", ["creating"], "available")
        expect(yield* next).toBe("available")

        // writes that leave the status as it is emit nothing
        yield* catalog.update("w", (r) => ({ ...r, display_name: "renamed" }))
        yield* Effect.sleep("300 millis")
        expect(yield* catalog.transition("w", ["creating"], "error")).toBe(false)
        yield* Effect.sleep("300 millis")
        expect(yield* Queue.size(seen)).toBe(0)

        yield* catalog.transition("w", ["available"], "deleting")
        expect(yield* next).toBe("deleting")
        yield* catalog.transition("w", ["deleting"], "deleted")
        expect(yield* next).toBe("deleted")
        yield* Effect.sleep("300 millis")
        expect(yield* Queue.size(seen)).toBe(0)
        expect((yield* fiber.poll)._tag).toBe("None") // the record exists: still watching
        yield* Fiber.interrupt(fiber)
      })))

    it.live("watch of an unknown id ends without emitting", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        const statuses = yield* Stream.runCollect(catalog.watch("missing")).pipe(Effect.timeout("2 seconds"))
        expect(Chunk.toReadonlyArray(statuses)).toEqual([])
      })))

    it.effect("dependentsOf lists the records naming a parent that still exist", () =>
      run(Effect.gen(function*() {
        const catalog = yield* BackupCatalog
        const make = (id: string, parent_id: string | null, status: BackupStatus) =>
          newBackupRecord({ id, volume_id: "v", volume_size_bytes: 1, parent_id, status })
        yield* catalog.create(make("full", null, "available"))
        yield* catalog.create(make("inc-1", "full", "available"))
        yield* catalog.create(make("inc-2", "full", "deleted"))
        yield* catalog.create(make("inc-3", "inc-1", "creating"))
        expect((yield* dependentsOf(catalog, "full")).map((r) => r.id)).toEqual(["inc-1"])
        expect((yield* dependentsOf(catalog, "inc-1")).map((r) => r.id)).toEqual(["inc-3"])
        expect(yield* dependentsOf(catalog, "inc-3")).toEqual([])
      })))
  })
