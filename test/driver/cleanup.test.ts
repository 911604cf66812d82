/**
 * cleanup settles everything a killed or failed process leaves: failed
 * backups whose objects could not be deleted, cleanups and deletes killed or
 * failed midway, and (posix) the empty container directories of failed and
 * deleted backups. Records with a live lease are never touched, and two
 * cleanups at once never work on the same record.
 *
 * A killed process is simulated by the catalog state it leaves: the record
 * as it was while the work ran, with a lease that has run out.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  backup,
  BackupCatalog,
  cleanup,
  deleteBackup,
  layerMemoryCatalog,
  layerPosix,
  layerSqliteCatalog,
  makeMemory,
  makePosix,
  newBackupRecord,
  ObjectStore,
  withFaults,
  type BackupRecord,
  type BackupStatus
} from "../../src/index.js"
import { pendingDeletion } from "../../src/driver/cleanup.js"
import { cli } from "../support/cli.js"
import { typedFailure } from "../support/inspect.js"
import { patternedVolume, withTempDir, writeVolume, localServices } from "../support/layers.js"

const CONTAINER = "volumebackups" // the memory store's default
const options = { chunkSize: 4096, shaBlockSize: 1024, concurrency: 1 }
const past = () => new Date(Date.now() - 60_000)

/** A memory store that is down (every list, delete, removeLeftovers fails transiently) while `outage.down`. */
const storeWithOutage = (outage: { down: boolean }, failingPut?: string) =>
  withFaults(Effect.runSync(makeMemory()), {
    seed: 1,
    rules: [
      ...(failingPut === undefined ? [] : [{ kind: "permanent" as const, operations: ["put" as const], objects: (name: string) => name.endsWith(failingPut) }]),
      { kind: "transient", operations: ["list", "delete", "removeLeftovers"], objects: () => outage.down }
    ]
  })

const servicesOver = (store: ObjectStore) => Layer.mergeAll(Layer.succeed(ObjectStore, store), layerMemoryCatalog(), localServices)

const objectsOf = (prefix: string | null) =>
  Effect.flatMap(ObjectStore, (store) => Effect.orDie(store.list(CONTAINER, prefix!)))

/** The catalog as a SIGKILL leaves it: `snapshot` (taken while the work ran), its lease run out. */
const asKilled = (snapshot: BackupRecord) =>
  Effect.flatMap(BackupCatalog, (catalog) => catalog.update(snapshot.id, () => ({ ...snapshot, lease_expires_at: past() })))

/**
 * A memory store, one delete at a time, whose `nth` delete stops until
 * `release`; `reached` completes when it has stopped there. `lists` records
 * each prefix listed.
 */
const gatedStore = (nth: number) => {
  const reached = Effect.runSync(Deferred.make<void>())
  const release = Effect.runSync(Deferred.make<void>())
  const lists: Array<string> = []
  let deletes = 0
  const base = Effect.runSync(makeMemory())
  const store: ObjectStore = {
    ...base,
    defaults: { ...base.defaults, concurrency: 1 },
    list: (c, p) => Effect.zipRight(Effect.sync(() => lists.push(p)), base.list(c, p)),
    delete: (c, o) =>
      Effect.suspend(() =>
        ++deletes === nth
          ? Deferred.succeed(reached, undefined).pipe(Effect.zipRight(Deferred.await(release)), Effect.zipRight(base.delete(c, o)))
          : base.delete(c, o)
      )
  }
  return { store, reached, release, lists }
}

/** A record with `count` objects in the memory store under its own prefix. */
const recordWithObjects = (id: string, fields: Partial<BackupRecord>, count = 2) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const prefix = `volume_v/20260304050607/az_nova_backup_${id}`
    yield* store.ensureContainer(CONTAINER)
    for (let i = 1; i <= count; i++) yield* store.put(CONTAINER, `${prefix}-0000${i}`, new Uint8Array([i]))
    yield* (yield* BackupCatalog).create(
      newBackupRecord({ id, volume_id: `vol-${id}`, volume_size_bytes: 8192, container: CONTAINER, service_metadata: prefix, ...fields })
    )
    return prefix
  })

describe("cleanup after failures", () => {
  const outage = { down: false }

  it.effect("a backup that fails during a store outage is left error_deleting with its objects; cleanup deletes them once the store is back, and it ends error", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        outage.down = true
        const catalog = yield* BackupCatalog
        const path = join(dir, "volume.img")
        yield* writeVolume(path, patternedVolume(20_000, 3))
        const exit = yield* Effect.exit(backup({ id: "b", volume_id: "v" }, path, options))
        expect(typedFailure(exit)._tag).toBe("StoreError")
        const failed = yield* catalog.get("b")
        expect(failed).toMatchObject({ status: "error_deleting", lease_expires_at: null })
        expect(failed.fail_reason).toContain("-00003")
        expect(failed.fail_reason).toContain("pending deletion")
        outage.down = false
        expect(yield* objectsOf(failed.service_metadata)).toHaveLength(2)

        // Still down: reported, and left for the next cleanup.
        outage.down = true
        const pending = yield* cleanup()
        expect(pending).toMatchObject([{ backupId: "b", was: "error_deleting", now: "error_deleting", failure: { _tag: "StoreUnavailable" } }])
        expect(yield* catalog.get("b")).toMatchObject({ status: "error_deleting", lease_expires_at: null })

        outage.down = false
        expect(yield* cleanup()).toEqual([{ backupId: "b", was: "error_deleting", now: "error", objectsDeleted: 2 }])
        const settled = yield* catalog.get("b")
        expect(settled).toMatchObject({ status: "error", lease_expires_at: null })
        expect(settled.fail_reason).toContain("-00003")
        expect(settled.fail_reason).not.toContain("pending")
        expect(yield* objectsOf(failed.service_metadata)).toEqual([])
        expect(yield* cleanup()).toEqual([])
      })
    ).pipe(Effect.provide(servicesOver(storeWithOutage(outage, "-00003"))))
  )

  it.effect("a cleanup killed while deleting an abandoned backup's objects is resumed once its lease runs out; the record ends error", () => {
    // The first cleanup is stopped in its second delete, with some of the three objects deleted
    // (deletes run several at once, so which and how many depends on the order they finish in).
    const { store, reached, release } = gatedStore(2)
    return Effect.gen(function* () {
      const catalog = yield* BackupCatalog
      const prefix = yield* recordWithObjects("dead", { status: "creating", lease_expires_at: past() }, 3)
      const first = yield* Effect.fork(cleanup())
      yield* Deferred.await(reached)
      const midway = yield* catalog.get("dead")
      expect(midway.status).toBe("error_deleting")
      expect(midway.lease_expires_at!.getTime()).toBeGreaterThan(Date.now())
      yield* Fiber.interrupt(first)
      yield* asKilled(midway)
      yield* Deferred.succeed(release, undefined)
      const left = (yield* objectsOf(prefix)).length
      expect(left).toBeGreaterThanOrEqual(1)
      expect(left).toBeLessThan(3)
      expect(yield* cleanup()).toEqual([{ backupId: "dead", was: "error_deleting", now: "error", objectsDeleted: left }])
      const record = yield* catalog.get("dead")
      expect(record).toMatchObject({ status: "error", lease_expires_at: null })
      expect(record.fail_reason).toContain("lease expired")
      expect(yield* objectsOf(prefix)).toEqual([])
    }).pipe(Effect.provide(servicesOver(store)))
  })

  it.effect("an error_deleting left by a failed delete, or by a cleanup of it killed midway, is finished by cleanup and ends deleted", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        const path = join(dir, "volume.img")
        yield* writeVolume(path, patternedVolume(10_000, 5))
        const made = yield* backup({ id: "gone", volume_id: "v" }, path, options)
        outage.down = true
        expect(typedFailure(yield* Effect.exit(deleteBackup("gone")))._tag).toBe("StoreUnavailable")
        expect(yield* catalog.get("gone")).toMatchObject({ status: "error_deleting", lease_expires_at: null })
        // The cleanup that retries it is killed (the store still hangs, say): deleting, its lease run out.
        expect(yield* cleanup()).toMatchObject([{ backupId: "gone", was: "error_deleting", now: "error_deleting", failure: { _tag: "StoreUnavailable" } }])
        yield* asKilled({ ...(yield* catalog.get("gone")), status: "deleting" })
        outage.down = false
        expect(yield* objectsOf(made.service_metadata)).toHaveLength(5)
        expect(yield* cleanup()).toEqual([{ backupId: "gone", was: "deleting", now: "deleted", objectsDeleted: 5 }])
        expect(yield* objectsOf(made.service_metadata)).toEqual([])

        // The same straight from error_deleting.
        const other = yield* backup({ id: "other", volume_id: "v" }, path, options)
        outage.down = true
        yield* Effect.exit(deleteBackup("other"))
        outage.down = false
        expect(yield* cleanup()).toEqual([{ backupId: "other", was: "error_deleting", now: "deleted", objectsDeleted: 5 }])
        expect(yield* objectsOf(other.service_metadata)).toEqual([])
        expect((yield* catalog.get("other")).status).toBe("deleted")
      })
    ).pipe(Effect.provide(servicesOver(storeWithOutage(outage))))
  )
  it.effect("records the previous version left (error with objects, error_deleting of a killed cleanup) are settled too", () =>
    Effect.gen(function* () {
      const catalog = yield* BackupCatalog
      const abandoned = "abandoned: the process running it stopped (its lease expired)"
      const leftovers = yield* recordWithObjects("old-error", {
        status: "error",
        fail_reason: "store put of volumebackups/x-00003 failed: boom; its objects could not all be deleted (store unavailable during list of volumebackups: down), run cleanup or delete"
      })
      const killedBackup = yield* recordWithObjects("old-backup", { status: "error_deleting", fail_reason: abandoned })
      const killedDelete = yield* recordWithObjects("old-delete", { status: "error_deleting", fail_reason: abandoned, object_count: 2 })
      expect(yield* cleanup()).toEqual([
        { backupId: "old-error", was: "error", now: "error", objectsDeleted: 2 },
        { backupId: "old-backup", was: "error_deleting", now: "error", objectsDeleted: 2 },
        { backupId: "old-delete", was: "error_deleting", now: "deleted", objectsDeleted: 2 }
      ])
      expect((yield* catalog.get("old-error")).fail_reason).toBe("store put of volumebackups/x-00003 failed: boom")
      for (const prefix of [leftovers, killedBackup, killedDelete]) expect(yield* objectsOf(prefix)).toEqual([])
      expect(yield* cleanup()).toEqual([])
    }).pipe(Effect.provide(servicesOver(Effect.runSync(makeMemory()))))
  )
})

describe("cleanup and leases", () => {
  it.effect("a record whose lease is live is left alone by cleanup and by delete; once the work ends it is settled", () => {
    // A first cleanup takes the record and is held in its first delete: its lease is live.
    const { store, reached, release, lists } = gatedStore(1)
    return Effect.gen(function* () {
      const catalog = yield* BackupCatalog
      const prefix = yield* recordWithObjects("busy", { status: "creating", lease_expires_at: past() })
      const first = yield* Effect.fork(cleanup())
      yield* Deferred.await(reached)
      const working = yield* catalog.get("busy")
      expect(working.status).toBe("error_deleting")
      expect(working.lease_expires_at!.getTime()).toBeGreaterThan(Date.now())
      expect(yield* cleanup()).toEqual([])
      expect(typedFailure(yield* Effect.exit(deleteBackup("busy")))._tag).toBe("InvalidRequest")
      expect(yield* catalog.get("busy")).toMatchObject({ status: "error_deleting", lease_expires_at: working.lease_expires_at })
      expect(lists).toEqual([prefix])
      yield* Deferred.succeed(release, undefined)
      expect(yield* Fiber.join(first)).toEqual([{ backupId: "busy", was: "creating", now: "error", objectsDeleted: 2 }])
      expect(yield* objectsOf(prefix)).toEqual([])
      expect(yield* catalog.get("busy")).toMatchObject({ status: "error", lease_expires_at: null })
    }).pipe(Effect.provide(servicesOver(store)))
  })

  it.live("two cleanups at once (two catalog connections, like two processes) never work on the same record, and settle each once", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "cb-cleanup-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const file = join(dir, "catalog.sqlite")
      const open = Effect.map(Layer.build(layerSqliteCatalog(file)), Context.get(BackupCatalog))
      const [one, two] = [yield* open, yield* open]
      const lists: Array<string> = []
      const base = (yield* makeMemory())
      // Slow deletes, so the two cleanups overlap.
      const store: ObjectStore = {
        ...base,
        list: (c, p) => Effect.zipRight(Effect.sync(() => lists.push(p)), base.list(c, p)),
        delete: (c, o) => Effect.zipRight(Effect.sleep("15 millis"), base.delete(c, o))
      }
      const seed = (id: string, fields: Partial<BackupRecord>) =>
        recordWithObjects(id, fields).pipe(Effect.provideService(BackupCatalog, one), Effect.provideService(ObjectStore, store))
      const expected: Record<string, BackupStatus> = {}
      const prefixes: Array<string> = []
      for (let i = 0; i < 3; i++) {
        prefixes.push(yield* seed(`abandoned-${i}`, { status: "creating", lease_expires_at: past() }))
        prefixes.push(yield* seed(`deleting-${i}`, { status: "deleting", lease_expires_at: past(), object_count: 2 }))
        prefixes.push(yield* seed(`failed-${i}`, { status: "error_deleting", fail_reason: pendingDeletion("put failed") }))
        prefixes.push(yield* seed(`undeleted-${i}`, { status: "error_deleting", fail_reason: "store delete failed", object_count: 2 }))
        Object.assign(expected, { [`abandoned-${i}`]: "error", [`deleting-${i}`]: "deleted", [`failed-${i}`]: "error", [`undeleted-${i}`]: "deleted" })
      }
      const run = (catalog: BackupCatalog) =>
        cleanup().pipe(Effect.provideService(BackupCatalog, catalog), Effect.provideService(ObjectStore, store))
      const [a, b] = yield* Effect.all([run(one), run(two)], { concurrency: "unbounded" })
      const settled = [...a, ...b].map((action) => action.backupId).sort()
      expect(settled).toEqual(Object.keys(expected).sort())
      expect([...a, ...b].every((action) => action.objectsDeleted === 2 && action.failure === undefined)).toBe(true)
      // Each record's objects were listed by one cleanup only: the one that held it.
      expect([...lists].sort()).toEqual([...prefixes].sort())
      for (const [id, status] of Object.entries(expected)) {
        expect(yield* two.get(id)).toMatchObject({ status, lease_expires_at: null })
      }
      expect(yield* Effect.orDie(base.list(CONTAINER, ""))).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(localServices))
  )
})

describe("posix container directories", () => {
  /** The directories under `root`, relative, sorted. */
  const directoriesUnder = (root: string) =>
    readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
      .sort()

  it.effect("failed and deleted backups leave no empty container directory under the root; the root, other backups' directories and a named container stay", () =>
    withTempDir((dir) => {
      const root = join(dir, "store")
      const outage = { down: false }
      const posix = Layer.effect(
        ObjectStore,
        Effect.map(makePosix({ root }), (store) =>
          withFaults(store, {
            seed: 1,
            rules: [
              { kind: "permanent", operations: ["put"], objects: (name) => name.endsWith("-00003") && !name.includes("abcd0001") },
              { kind: "transient", operations: ["list", "delete", "removeLeftovers"], objects: () => outage.down }
            ]
          })
        )
      )
      return Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        const path = join(dir, "volume.img")
        yield* writeVolume(path, patternedVolume(20_000, 9))
        const kept = yield* backup({ id: "abcd0001-kept", volume_id: "v1" }, path, options)
        expect(kept.container).toBe("ab/cd/abcd0001-kept")

        // Fails; its clean-up deletes the objects and its own directory, not the shared parents.
        yield* Effect.exit(backup({ id: "abcd0002-fails", volume_id: "v2" }, path, options))
        expect((yield* catalog.get("abcd0002-fails")).status).toBe("error")
        expect(directoriesUnder(root)).toEqual(["ab", "ab/cd", "ab/cd/abcd0001-kept"])

        // Fails while the store is down: the directory goes with the objects, at cleanup.
        outage.down = true
        yield* Effect.exit(backup({ id: "ef010003-later", volume_id: "v3" }, path, options))
        expect((yield* catalog.get("ef010003-later")).status).toBe("error_deleting")
        expect(directoriesUnder(root)).toContain("ef/01/ef010003-later")
        outage.down = false
        expect(yield* cleanup()).toMatchObject([{ backupId: "ef010003-later", now: "error" }])
        expect(directoriesUnder(root)).toEqual(["ab", "ab/cd", "ab/cd/abcd0001-kept"])

        // A container named by the user may be shared: it stays, empty.
        yield* Effect.exit(backup({ id: "12340004-named", volume_id: "v4", container: "named" }, path, options))
        expect(directoriesUnder(root)).toEqual(["ab", "ab/cd", "ab/cd/abcd0001-kept", "named"])

        yield* deleteBackup("abcd0001-kept")
        expect(directoriesUnder(root)).toEqual(["named"])
        expect(existsSync(root)).toBe(true)
      }).pipe(Effect.provide(Layer.mergeAll(posix, layerMemoryCatalog()).pipe(Layer.provideMerge(localServices))))
    })
  )

  it.effect("a backup creating its container while a deleted backup's empty parents are removed still gets its container", () =>
    withTempDir((dir) => {
      const root = join(dir, "store")
      return Effect.gen(function* () {
        const store = yield* ObjectStore
        for (let i = 0; i < 50; i++) {
          const old = `ab/cd/abcd-old-${i}`
          const fresh = `ab/cd/abcd-new-${i}`
          yield* store.ensureContainer(old)
          const [, made] = yield* Effect.all(
            [store.removeLeftovers!(old, `volume_v_20260304050607_backup_abcd-old-${i}`), Effect.exit(store.ensureContainer(fresh))],
            { concurrency: "unbounded" }
          )
          expect(Exit.isSuccess(made)).toBe(true)
          expect(existsSync(join(root, fresh))).toBe(true)
          yield* store.removeLeftovers!(fresh, `volume_v_20260304050607_backup_abcd-new-${i}`)
        }
        expect(readdirSync(root)).toEqual([])
      }).pipe(Effect.provide(layerPosix({ root })), Effect.provide(localServices))
    })
  )
})

// better-sqlite3 ships no types: what the test uses of it.
const Database = createRequire(import.meta.url)("better-sqlite3") as new (filename: string) => {
  prepare: (sql: string) => { run: (params: Record<string, unknown>) => unknown }
  close: () => void
}

describe("the cleanup command", () => {
  /** Changes rows of the CLI's SQLite catalog as a killed process leaves them. */
  const setRow = (file: string, id: string, fields: Record<string, string | null>) => {
    const db = new Database(file)
    try {
      const columns = Object.keys(fields).map((name) => `${name} = @${name}`).join(", ")
      db.prepare(`UPDATE backups SET ${columns} WHERE id = @id`).run({ ...fields, id })
    } finally {
      db.close()
    }
  }
  const filesUnder = (root: string) =>
    readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)

  it.live("settles killed cleanups and deletes, leaves live work alone, and reports (exit 9) what a store failure leaves pending", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const repo = join(dir, "repo")
        const env = { CHUNKED_BACKUP_REPO: repo }
        const volume = join(dir, "disk.img")
        writeFileSync(volume, patternedVolume(300_000, 4))
        const ids = ["a1a10000-0000-4000-8000-000000000001", "b2b20000-0000-4000-8000-000000000002", "c3c30000-0000-4000-8000-000000000003"]
        for (const id of ids) {
          const made = yield* cli(["backup", volume, "--backup-id", id, "--chunk-size", "65536"], env)
          expect(made.code, made.stderr).toBe(0)
        }
        const [failed, deleting, live] = ids as [string, string, string]
        const catalogFile = join(repo, "catalog.sqlite")
        const store = join(repo, "store")
        const expired = new Date(Date.now() - 60_000).toISOString()
        // A cleanup of a failed backup, killed; a delete, killed; a cleanup still running.
        setRow(catalogFile, failed, { status: "error_deleting", fail_reason: pendingDeletion("reading the volume failed"), lease_expires_at: expired })
        setRow(catalogFile, deleting, { status: "deleting", lease_expires_at: expired })
        setRow(catalogFile, live, { status: "error_deleting", lease_expires_at: new Date(Date.now() + 600_000).toISOString() })
        // The deleting backup's container is broken: a file where its directory was.
        const container = join(store, "b2", "b2", deleting)
        renameSync(container, join(dir, "moved"))
        writeFileSync(container, "not a directory")

        const first = yield* cli(["cleanup"], env)
        expect(first.code, first.stderr).toBe(9)
        expect(first.stdout).toContain(`${failed}: error_deleting -> error (7 objects deleted)`)
        expect(first.stdout).toContain(`${deleting}: deleting -> error_deleting, objects still to delete (`)
        expect(first.stdout).not.toContain(live)
        expect(first.stderr).toContain(deleting)

        rmSync(container)
        renameSync(join(dir, "moved"), container)
        const second = yield* cli(["--json", "cleanup"], env)
        expect(second.code, second.stderr).toBe(0)
        expect(JSON.parse(second.stdout)).toEqual([{ backupId: deleting, was: "error_deleting", now: "deleted", objectsDeleted: 7 }])
        const show = (id: string) => Effect.map(cli(["--json", "show", id], env), (r) => JSON.parse(r.stdout) as Record<string, unknown>)
        expect(yield* show(failed)).toMatchObject({ status: "error", fail_reason: "reading the volume failed" })
        expect(yield* show(deleting)).toMatchObject({ status: "deleted" })
        expect(yield* show(live)).toMatchObject({ status: "error_deleting" })
        // Only the live record's objects and directories are left.
        expect(filesUnder(store).every((name) => name.includes(live))).toBe(true)
        expect(filesUnder(store)).toHaveLength(7)
        expect(readdirSync(store).sort()).toEqual(["c3"])
        expect((yield* cli(["cleanup"], env)).stdout.trim()).toBe("nothing to clean up")
      })
    )
  )
})
