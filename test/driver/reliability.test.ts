/**
 * verify, leases, cleanup of abandoned work, one backup per volume at a time.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { join } from "node:path"
import {
  backup,
  BackupCatalog,
  cleanup,
  newBackupRecord,
  ObjectStore,
  restore,
  verify
} from "../../src/index.js"
import { memoryServices, patternedVolume, withTempDir, wrapStore, writeVolume } from "../support/layers.js"

const options = { chunkSize: 4096, shaBlockSize: 1024, compression: "zlib" }

const volumeBytes = (size: number, seed: number) => patternedVolume(size, seed, 5000, 1500)

const withChain = <A, E, R>(use: (dir: string) => Effect.Effect<A, E, R>) =>
  withTempDir((dir) =>
    Effect.gen(function* () {
      const path = join(dir, "vol.img")
      const volume = volumeBytes(30_000, 3)
      yield* writeVolume(path, volume)
      yield* backup({ id: "full", volume_id: "v" }, path, options)
      volume.fill(1, 12_000, 15_000)
      yield* writeVolume(path, volume)
      yield* backup({ id: "inc", volume_id: "v", parent_id: "full" }, path, options)
      return yield* use(dir)
    })
  )

const objectName = (id: string, suffix: string) =>
  Effect.map(Effect.flatMap(BackupCatalog, (c) => c.get(id)), (r) => ({ container: r.container!, name: `${r.service_metadata}${suffix}` }))

const snapshot = Effect.gen(function* () {
  const store = yield* ObjectStore
  const names = yield* store.list("volumebackups", "")
  return yield* Effect.forEach(names, (n) => Effect.map(store.get("volumebackups", n), (b) => `${n}:${Buffer.from(b).toString("base64")}`))
})

describe("verify", () => {
  it.effect("passes a sound chain, with and without --full, and writes nothing", () =>
    withChain(() =>
      Effect.gen(function* () {
        const before = yield* snapshot
        const report = yield* verify("inc")
        expect(report).toMatchObject({ backups: 2, problems: [], full: false })
        expect(report.objectsChecked).toBe(8 + 2)
        const fullReport = yield* verify("inc", { full: true })
        expect(fullReport).toMatchObject({ problems: [], full: true })
        expect(yield* snapshot).toEqual(before)
        expect((yield* (yield* BackupCatalog).get("inc")).status).toBe("available")
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("reports every problem with object names, not only the first", () =>
    withChain(() =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        const corrupt1 = yield* objectName("full", "-00001")
        const corrupt2 = yield* objectName("full", "-00005")
        const missing = yield* objectName("inc", "-00001")
        const extra = yield* objectName("full", "-77777")
        for (const o of [corrupt1, corrupt2]) {
          const bytes = yield* store.get(o.container, o.name)
          yield* store.put(o.container, o.name, bytes.map((b, i) => (i === bytes.length - 3 ? b ^ 1 : b)))
        }
        yield* store.delete(missing.container, missing.name)
        yield* store.put(extra.container, extra.name, new Uint8Array([1]))
        const report = yield* verify("inc", { full: true })
        const text = report.problems.map((p) => `${p.backupId} ${p.object ?? ""} ${p.problem}`)
        expect(text.some((t) => t.includes(corrupt1.name))).toBe(true)
        expect(text.some((t) => t.includes(corrupt2.name))).toBe(true)
        expect(text.some((t) => t.startsWith("inc") && t.includes("missing") && t.includes(missing.name))).toBe(true)
        expect(text.some((t) => t.startsWith("full") && t.includes("unexpected") && t.includes(extra.name))).toBe(true)
        expect(text.some((t) => t.includes(`${missing.name} `) && t.includes("not found"))).toBe(true)
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("--full passes a chain whose incremental runs sit inside a full object's range", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        // Distinct blocks, so bytes checked out of volume order cannot pass by accident.
        const path = join(dir, "v.img")
        const volume = patternedVolume(8 * 4096, 3)
        yield* writeVolume(path, volume)
        yield* backup({ id: "f8", volume_id: "v" }, path, { chunkSize: 8 * 4096, shaBlockSize: 4096 })
        volume.fill(9, 2 * 4096, 3 * 4096)
        volume.fill(8, 5 * 4096, 7 * 4096)
        yield* writeVolume(path, volume)
        yield* backup({ id: "i8", volume_id: "v", parent_id: "f8" }, path, { chunkSize: 8 * 4096, shaBlockSize: 4096 })
        expect((yield* verify("i8", { full: true })).problems).toEqual([])
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("--full finds a sha256 list that does not match the data", () =>
    withChain(() =>
      Effect.gen(function* () {
        const store = yield* ObjectStore
        const sha = yield* objectName("inc", "_sha256file")
        const text = new TextDecoder().decode(yield* store.get(sha.container, sha.name))
        const hashes = [...text.matchAll(/"([0-9a-f]{64})"/g)].map((m) => m[1]!)
        const tampered = text.replace(hashes[7]!, "0".repeat(64))
        yield* store.put(sha.container, sha.name, new TextEncoder().encode(tampered))
        expect((yield* verify("inc")).problems).toEqual([])
        const report = yield* verify("inc", { full: true })
        expect(report.problems).toEqual([{ backupId: "inc", problem: "sha block 7 (offset 7168) does not match the sha256 file" }])
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})

describe("leases and cleanup", () => {
  it.effect("cleanup settles abandoned work by lease, and leaves live work alone", () =>
    withChain(() =>
      Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        const store = yield* ObjectStore
        const past = new Date(Date.now() - 60_000)
        const future = new Date(Date.now() + 60_000)
        const abandoned = newBackupRecord({
          id: "dead",
          volume_id: "w",
          volume_size_bytes: 10,
          container: "volumebackups",
          service_metadata: "volume_w/x/az_nova_backup_dead",
          lease_expires_at: past
        })
        yield* catalog.create(abandoned)
        yield* store.put("volumebackups", "volume_w/x/az_nova_backup_dead-00001", new Uint8Array([1, 2]))
        yield* catalog.create({ ...abandoned, id: "alive", service_metadata: "volume_w/x/az_nova_backup_alive", lease_expires_at: future })
        yield* store.put("volumebackups", "volume_w/x/az_nova_backup_alive-00001", new Uint8Array([3]))
        yield* catalog.update("full", (r) => ({ ...r, status: "restoring", lease_expires_at: past }))
        const actions = yield* cleanup()
        expect(actions).toEqual([
          { backupId: "full", was: "restoring", now: "available", objectsDeleted: 0 },
          { backupId: "dead", was: "creating", now: "error", objectsDeleted: 1 }
        ])
        expect((yield* catalog.get("dead")).fail_reason).toContain("lease expired")
        expect(yield* store.list("volumebackups", "volume_w/x/az_nova_backup_dead")).toEqual([])
        expect((yield* catalog.get("alive")).status).toBe("creating")
        expect(yield* store.list("volumebackups", "volume_w/x/az_nova_backup_alive")).toHaveLength(1)
        expect(yield* cleanup()).toEqual([])
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.live("a running backup keeps its lease fresh, and clears it when done", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        const path = join(dir, "vol.img")
        yield* writeVolume(path, volumeBytes(40_000, 5))
        const slow = wrapStore((s) => ({ ...s, put: (c, o, b, x) => Effect.zipRight(Effect.sleep(40), s.put(c, o, b, x)) }))
        const fiber = yield* Effect.fork(
          slow(backup({ id: "slow", volume_id: "v" }, path, { ...options, concurrency: 1, leaseDuration: "150 millis" }))
        )
        yield* Effect.sleep(300)
        const during = yield* catalog.get("slow")
        expect(during.status).toBe("creating")
        expect(during.lease_expires_at!.getTime()).toBeGreaterThan(Date.now())
        const done = yield* Fiber.join(fiber)
        expect(done.status).toBe("available")
        expect((yield* catalog.get("slow")).lease_expires_at).toBeNull()
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.live("a second backup of a volume being backed up is refused with VolumeBusy; a stale one does not block", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        const path = join(dir, "vol.img")
        yield* writeVolume(path, volumeBytes(40_000, 7))
        const slow = wrapStore((s) => ({ ...s, put: (c, o, b, x) => Effect.zipRight(Effect.sleep(30), s.put(c, o, b, x)) }))
        const first = yield* Effect.fork(slow(backup({ id: "first", volume_id: "v" }, path, { ...options, concurrency: 1 })))
        yield* Effect.sleep(50)
        const refused = yield* Effect.flip(backup({ id: "second", volume_id: "v" }, path, options))
        expect(refused._tag).toBe("VolumeBusy")
        expect(refused.message).toBe("volume v is being backed up by backup first; try again when it has finished")
        // Refused before it started: no record is left behind.
        expect((yield* Effect.flip(catalog.get("second")))._tag).toBe("BackupNotFound")
        yield* Fiber.join(first)
        // Another volume is not blocked, and a dead process's record does not block either.
        yield* catalog.create(newBackupRecord({ id: "ghost", volume_id: "u", volume_size_bytes: 1, lease_expires_at: new Date(0) }))
        const other = yield* backup({ id: "third", volume_id: "u" }, path, options)
        expect(other.status).toBe("available")
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.live("a restore whose lease ran out (process killed) is handed back by cleanup and restores again", () =>
    withChain((dir) =>
      Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        yield* catalog.update("inc", (r) => ({ ...r, status: "restoring", lease_expires_at: new Date(Date.now() - 1) }))
        expect((yield* Effect.flip(restore("inc", join(dir, "t.img"))))._tag).toBe("InvalidRequest")
        yield* cleanup()
        const result = yield* restore("inc", join(dir, "t.img"))
        expect(result.backups).toBe(2)
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})
