/**
 * Property tests of the driver: round trips over chains of incrementals,
 * interruption of backups, cancellation of restores.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, FastCheck as fc, Fiber, Stream } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { backup, BackupCatalog, ObjectStore, restore, restoreStream, verify, type BackupRecord } from "../../src/index.js"
import { applyEdits, chains, chainStates, sizes, volumeBytes } from "../../src/testing/index.js"
import { memoryServices, patternedVolume, withTempDir, wrapStore, writeVolume } from "../support/layers.js"
import type { OpenTarget } from "../../src/driver/volumeTarget.js"

const runs = { fastCheck: { numRuns: 100 } }

describe("driver properties", () => {
  it.effect.prop(
    "a chain of 0-5 incrementals restores the last state byte for byte, to a file and as an ordered stream",
    [chains(48 * 1024), fc.integer({ min: 1, max: 4 })],
    ([chain, concurrency]) =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const volumePath = join(dir, "volume.img")
          const states = chainStates(chain)
          const { chunkSize, shaBlockSize } = chain
          let parent: BackupRecord | undefined
          for (const [i, state] of states.entries()) {
            yield* writeVolume(volumePath, state)
            const compression = i === 0 ? chain.compression : chain.steps[i - 1]!.compression
            parent = yield* backup({ id: `b${i}`, volume_id: "v", ...(parent === undefined ? {} : { parent_id: parent.id }) }, volumePath, {
              chunkSize,
              shaBlockSize,
              compression
            })
          }
          const last = parent!.id
          const state = states.at(-1)!
          const target = join(dir, "restored.img")
          yield* restore(last, target)
          expect(Buffer.from(readFileSync(target)).equals(Buffer.from(state))).toBe(true)
          // And into an existing, dirty file that is not "new".
          yield* writeVolume(target, new Uint8Array(state.length).fill(0xee))
          yield* restore(last, target, { volumeIsNew: false })
          expect(Buffer.from(readFileSync(target)).equals(Buffer.from(state))).toBe(true)
          // As a stream in volume order: incremental objects sit inside their parents' chunks.
          const streamed = yield* Stream.runCollect(restoreStream(last, { concurrency }))
          expect(Buffer.concat(Chunk.toReadonlyArray(streamed)).equals(Buffer.from(state))).toBe(true)
          // verify --full rebuilds the same volume from the chain and finds every sha block right.
          expect((yield* verify(last, { full: true })).problems).toEqual([])
        })
      ).pipe(Effect.provide(memoryServices())),
    runs
  )

  it.live.prop(
    "an interruption at any point of a backup leaves no object of that backup",
    [volumeBytes(64 * 1024), sizes, fc.nat({ max: 40 }), fc.boolean()],
    ([volume, { chunkSize, shaBlockSize }, stopAfterPuts, incremental]) =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const store = yield* ObjectStore
          const catalog = yield* BackupCatalog
          const volumePath = join(dir, "volume.img")
          yield* writeVolume(volumePath, volume)
          const options = { chunkSize, shaBlockSize, compression: "zlib" }
          if (incremental) {
            yield* backup({ id: "parent", volume_id: "v" }, volumePath, options)
            yield* writeVolume(volumePath, applyEdits(volume, [{ at: 0.5, length: 3000, byte: 7 }]))
          }
          const reached = yield* Deferred.make<void>()
          let puts = 0
          const counting = wrapStore((s) => ({
            ...s,
            put: (c, o, b, x) =>
              Effect.zipRight(
                s.put(c, o, b, x),
                Effect.suspend(() => (++puts > stopAfterPuts ? Deferred.succeed(reached, undefined) : Effect.void))
              )
          }))
          const id = "interrupted"
          const fiber = yield* Effect.fork(
            counting(backup({ id, volume_id: "v", ...(incremental ? { parent_id: "parent" } : {}) }, volumePath, options))
          )
          // Interrupt after the chosen number of writes, or wherever it is when they never come.
          yield* Effect.race(Deferred.await(reached), Fiber.await(fiber))
          const exit = yield* Fiber.interrupt(fiber)
          const record = yield* catalog.get(id)
          const left = record.service_metadata === null ? [] : yield* store.list(record.container!, record.service_metadata)
          // Interrupted after it completed: the backup stands, whole.
          if (Exit.isSuccess(exit) || record.status === "available") {
            expect(record.status).toBe("available")
            expect(left.some((name) => name.endsWith("_metadata"))).toBe(true)
          } else {
            expect(left).toEqual([])
            expect(record.status).toBe("error")
          }
        })
      ).pipe(Effect.provide(memoryServices())),
    runs
  )

  it.live.prop(
    "a restore whose status changes fails with RestoreCancelled",
    [volumeBytes(32 * 1024), fc.nat({ max: 20 }), fc.constantFrom("available" as const, "error" as const, "deleting" as const)],
    ([volume, changeAtGet, newStatus]) =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const catalog = yield* BackupCatalog
          const volumePath = join(dir, "volume.img")
          yield* writeVolume(volumePath, volume)
          const options = { chunkSize: 2048, shaBlockSize: 512, compression: "zstd" }
          yield* backup({ id: "full", volume_id: "v" }, volumePath, options)
          yield* writeVolume(volumePath, applyEdits(volume, [{ at: 0.2, length: 4000, byte: 1 }]))
          yield* backup({ id: "inc", volume_id: "v", parent_id: "full" }, volumePath, options)
          let gets = 0
          // At the chosen read, another party changes the status; the read then
          // stalls, so only the status watcher can end the restore.
          const changing = wrapStore((s) => ({
            ...s,
            get: (c, o, x) =>
              Effect.suspend(() =>
                gets++ === changeAtGet
                  ? Effect.zipRight(Effect.orDie(catalog.transition("inc", ["restoring"], newStatus)), Effect.sleep("30 seconds"))
                  : Effect.void
              ).pipe(Effect.zipRight(s.get(c, o, x)))
          }))
          const exit = yield* Effect.exit(changing(restore("inc", join(dir, "target.img"))))
          const totalGets = gets
          if (changeAtGet < totalGets) {
            expect(exit).toStrictEqual(Exit.fail(expect.objectContaining({ _tag: "RestoreCancelled", backupId: "inc" })))
            expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain(newStatus)
          } else {
            expect(Exit.isSuccess(exit)).toBe(true)
          }
          // A cancelled restore does not claim the status back.
          const status = (yield* catalog.get("inc")).status
          expect(status).toBe(changeAtGet < totalGets ? newStatus : "available")
        })
      ).pipe(Effect.provide(memoryServices())),
    { fastCheck: { numRuns: 100 } }
  )

  it.live("a cancel committed while the restore cannot be interrupted (its last write blocked) still ends it RestoreCancelled", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        const volumePath = join(dir, "volume.img")
        yield* writeVolume(volumePath, patternedVolume(64 * 1024))
        yield* backup({ id: "full", volume_id: "v" }, volumePath, { chunkSize: 16384, shaBlockSize: 4096, compression: "zlib" })
        const written: Array<number> = []
        // As a write to a full pipe blocks Node's event loop: the cancel commits, and the watcher gets no turn before the restore ends.
        const blocking: OpenTarget = () =>
          Effect.succeed({
            name: "blocked pipe",
            ordered: true,
            zeroed: false,
            write: (position) => Effect.sync(() => void written.push(position)),
            flush: Effect.uninterruptible(Effect.orDie(catalog.transition("full", ["restoring"], "available")))
          })
        const exit = yield* Effect.exit(restore("full", blocking))
        expect(written.length).toBeGreaterThan(0)
        expect(exit).toStrictEqual(Exit.fail(expect.objectContaining({ _tag: "RestoreCancelled", backupId: "full", status: "available" })))
        expect((yield* catalog.get("full")).status).toBe("available")
      })
    ).pipe(Effect.provide(memoryServices())))
})
