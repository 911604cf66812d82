/**
 * prune over real backups (memory store, memory catalog): random histories
 * and policies against the model, every backup that stays verifies --full,
 * the deleted ones leave no object; a dry run changes nothing; an
 * interruption at any delete leaves every remaining chain restorable and a
 * second prune finishes the job.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, TestClock } from "effect"
import { join } from "node:path"
import { backup, BackupCatalog, newBackupRecord, ObjectStore, verify, type BackupRecord } from "../../src/index.js"
import { prune } from "../../src/driver/prune.js"
import type { RetentionPolicy } from "../../src/driver/retention.js"
import { catalogSnapshot, storeSnapshot, typedFailure } from "../support/inspect.js"
import { memoryServices, patternedVolume, withTempDir, wrapStore, writeVolume } from "../support/layers.js"
import { historiesWith, modelDeleted, modelPolicy, policies } from "../support/retentionModel.js"

const NOW = new Date(Date.UTC(2026, 0, 1))
const options = { chunkSize: 4096, shaBlockSize: 1024, compression: "zlib", concurrency: 1 }

/** Makes `history` for real: one backup per record (its time, its parent), then the record's status as given. */
const makeHistory = (history: ReadonlyArray<BackupRecord>, dir: string) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const path = join(dir, "volume.img")
    for (const [i, r] of history.entries()) {
      yield* writeVolume(path, patternedVolume(r.volume_size_bytes, i + 1, 1500 + 100 * (i % 7)))
      yield* backup({ id: r.id, volume_id: r.volume_id, parent_id: r.parent_id, created_at: r.created_at }, path, { ...options, now: r.created_at })
    }
    for (const r of history) if (r.status !== "available") yield* catalog.update(r.id, (x) => ({ ...x, status: r.status }))
    return yield* catalog.list()
  })

/** Every available backup verifies with its whole chain and sha256 list. */
const everyAvailableVerifies = Effect.gen(function* () {
  for (const r of yield* (yield* BackupCatalog).list()) {
    if (r.status === "available") expect({ id: r.id, problems: (yield* verify(r.id, { full: true })).problems }).toEqual({ id: r.id, problems: [] })
  }
})

const objectsOf = (r: BackupRecord) => Effect.flatMap(ObjectStore, (store) => store.list(r.container!, r.service_metadata!))

describe("prune", () => {
  it.effect.prop(
    "deletes exactly what the model says; what stays verifies --full; what goes leaves no object",
    [historiesWith(["available", "available", "available", "error", "deleting"], 7), policies],
    ([history, policy]) =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const records = yield* makeHistory(history, dir)
          // prune reads Effect's Clock: the TestClock stands at NOW, after every backup of the history.
          yield* TestClock.setTime(NOW.getTime())
          const report = yield* prune(policy)
          const expected = modelDeleted(records, modelPolicy(policy), NOW)
          expect(new Set(report.deleted.map((d) => d.backupId))).toEqual(expected)
          const after = yield* (yield* BackupCatalog).list()
          for (const r of after) {
            expect(r.status === "deleted").toBe(expected.has(r.id))
            if (r.status === "deleted") expect(yield* objectsOf(r)).toEqual([])
          }
          yield* everyAvailableVerifies
        })
      ).pipe(Effect.provide(memoryServices())),
    { fastCheck: { numRuns: 20 } }
  )

  it.effect.prop(
    "--dry-run plans the same deletes and changes neither the catalog nor the store",
    [historiesWith(["available", "available", "error"], 5), policies],
    ([history, policy]) =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const records = yield* makeHistory(history, dir)
          const store = yield* ObjectStore
          const containers = new Set(records.map((r) => r.container!))
          const [catalogBefore, storeBefore] = [yield* catalogSnapshot, yield* storeSnapshot(store, containers)]
          yield* TestClock.setTime(NOW.getTime())
          const report = yield* prune(policy, { dryRun: true })
          expect(report.deleted).toEqual([])
          expect(new Set(report.plan.deletionOrder)).toEqual(modelDeleted(records, modelPolicy(policy), NOW))
          expect(yield* catalogSnapshot).toEqual(catalogBefore)
          expect(yield* storeSnapshot(store, containers)).toEqual(storeBefore)
        })
      ).pipe(Effect.provide(memoryServices())),
    { fastCheck: { numRuns: 10 } }
  )

  it.effect("refuses a policy without any rule, and a count below -1, before touching anything", () =>
    Effect.gen(function* () {
      expect(typedFailure(yield* Effect.exit(prune({})))).toMatchObject({ _tag: "InvalidRequest", reason: expect.stringMatching(/at least one keep rule/) })
      expect(typedFailure(yield* Effect.exit(prune({ last: 0 })))).toMatchObject({ _tag: "InvalidRequest" })
      expect(typedFailure(yield* Effect.exit(prune({ daily: -3 })))).toMatchObject({ _tag: "InvalidRequest", reason: expect.stringMatching(/--keep-daily/) })
    }).pipe(Effect.provide(memoryServices()))
  )

  it.effect("an incremental made on a planned removal between the plan and its delete stops the prune, naming it, and keeps its chain", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        yield* makeHistory(historiesChain(Date.UTC(2025, 0, 6)), dir)
        const path = join(dir, "volume.img")
        // While the plan is printed, someone backs up on a0, which the plan removes.
        const lateBackup = Effect.zipRight(writeVolume(path, patternedVolume(8192, 99)), backup({ id: "late", volume_id: "vol", parent_id: "a0" }, path, options))
        const services = yield* Effect.context<Effect.Effect.Context<typeof lateBackup>>()
        const exit = yield* Effect.exit(prune({ last: 1 }, { onPlan: () => Effect.asVoid(Effect.orDie(Effect.provide(lateBackup, services))) }))
        const failure = typedFailure(exit)
        expect({ tag: failure._tag, message: failure.message }).toEqual({ tag: "InvalidRequest", message: "backup a0 has dependent incremental backups (late); delete those first" })
        const after = yield* (yield* BackupCatalog).list()
        // a3, a2, a1 went (newest first); a0 stays with the late incremental on it, which restores.
        expect(after.filter((r) => r.status === "deleted").map((r) => r.id).sort()).toEqual(["a1", "a2", "a3"])
        expect((yield* verify("late", { full: true })).problems).toEqual([])
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  // Two chains of a full and three incrementals, an hour apart; keeping the last one deletes the first chain (16 objects).
  const day = Date.UTC(2025, 0, 6)
  const twoChains: ReadonlyArray<BackupRecord> = historiesChain(day)
  const keepLast: RetentionPolicy = { last: 1 }

  // 20: past the last object delete, the prune ends before the interruption.
  for (const stopAt of [1, 2, 5, 9, 14, 20]) {
    it.live(`interrupted at the ${stopAt}. object delete: every remaining chain restores, and a second prune finishes`, () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const records = yield* makeHistory(twoChains, dir)
          const reached = yield* Deferred.make<void>()
          let deletes = 0
          // The stopAt-th object delete never returns: the prune is interrupted inside a backup's delete.
          const stalling = wrapStore((s) => ({
            ...s,
            delete: (c, o) => Effect.suspend(() => (++deletes === stopAt ? Effect.zipRight(Deferred.succeed(reached, undefined), Effect.never) : s.delete(c, o)))
          }))
          const fiber = yield* Effect.fork(stalling(prune(keepLast, { leaseDuration: "1 second" })))
          yield* Effect.race(Deferred.await(reached), Fiber.await(fiber))
          const exit = yield* Fiber.interrupt(fiber)
          expect(Exit.isInterrupted(exit) || Exit.isSuccess(exit)).toBe(true)
          yield* everyAvailableVerifies
          // The lease of the delete it stopped in runs out; then the next prune finishes that delete too.
          yield* Effect.sleep("1100 millis")
          yield* prune(keepLast)
          const after = yield* (yield* BackupCatalog).list()
          const expected = modelDeleted(records, modelPolicy(keepLast), new Date())
          expect(after.filter((r) => r.status === "deleted").map((r) => r.id).sort()).toEqual([...expected].sort())
          yield* everyAvailableVerifies
        })
      ).pipe(Effect.provide(memoryServices()))
    )
  }
})

function historiesChain(start: number): ReadonlyArray<BackupRecord> {
  return ["a", "b"].flatMap((chain, c) =>
    [0, 1, 2, 3].map((i) =>
      newBackupRecord({
        id: `${chain}${i}`,
        volume_id: "vol",
        parent_id: i === 0 ? null : `${chain}${i - 1}`,
        status: "available",
        volume_size_bytes: 8192,
        created_at: new Date(start + (c * 4 + i) * 3_600_000)
      })
    )
  )
}
