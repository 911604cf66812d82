/**
 * Progress within an object: a bzip2 object takes seconds, and the bar must
 * move meanwhile (the codec workers count the bytes they have worked
 * through), never go back, and end at 100 %. And the CLI's smoothed rate.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import { join } from "node:path"
import { backup, type ProgressEvent, progressStream, restore } from "../../src/index.js"
import { makeRateMeter } from "../../src/cli/progressView.js"
import { currentWorkInFlight, WorkInFlight } from "../../src/codec/pool.js"
import { compressInWorker } from "../../src/codec/poolJobs.js"
import { memoryServices, sharedCodecPool, withTempDir, writeVolume } from "../support/layers.js"

/** Letters from a small alphabet: bzip2 shrinks it (so it is stored compressed) but slowly, ~5-10 MB/s. */
const slowToCompress = (size: number) => {
  const bytes = new Uint8Array(size)
  let x = 12345
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    bytes[i] = 97 + ((x >>> 16) % 16)
  }
  return bytes
}

const collect = () => {
  const events: Array<ProgressEvent> = []
  return { events, onProgress: (e: ProgressEvent) => Effect.sync(() => void events.push(e)), progressInterval: "50 millis" as const }
}

const expectMovingWithinTheObject = (events: ReadonlyArray<ProgressEvent>, total: number) => {
  const during = events.filter((e) => !e.done && e.objects === 0)
  // Before its only object was stored, the bar had moved, and not to the end.
  expect(during.some((e) => e.bytesDone > 0 && e.bytesDone < total), JSON.stringify(events.map((e) => [e.objects, e.bytesDone]))).toBe(true)
  const done = events.map((e) => e.bytesDone)
  expect(done).toEqual([...done].sort((a, b) => a - b))
  expect(events.at(-1)).toMatchObject({ done: true, bytesDone: total, percent: 100 })
  for (const e of events) expect(e.bytesDone).toBeLessThanOrEqual(total)
}

describe("progress within an object", () => {
  it.live("a one-object bzip2 backup and its restore report bytes while the object is worked on", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const size = 12 * 1024 * 1024
        const path = join(dir, "vol.img")
        yield* writeVolume(path, slowToCompress(size))
        const backedUp = collect()
        const record = yield* backup({ id: "b", volume_id: "v" }, path, { chunkSize: size, compression: "bz2", ...backedUp })
        expect(record.object_count).toBe(1)
        expectMovingWithinTheObject(backedUp.events, size)

        const restored = collect()
        yield* restore("b", join(dir, "out.img"), restored)
        expect(restored.events.at(-1)).toMatchObject({ done: true, bytesDone: size })
        const during = restored.events.filter((e) => !e.done)
        expect(during.every((e) => e.bytesDone <= size)).toBe(true)
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.live("codec jobs count towards the operation that started them, and only while they run", () =>
    Effect.gen(function* () {
      const big = new WorkInFlight()
      const small = new WorkInFlight()
      const bigData = slowToCompress(12 * 1024 * 1024)
      const smallData = slowToCompress(1024 * 1024)
      const seen = { big: [] as Array<number>, smallAfterItsJob: [] as Array<number> }
      let smallDone = false
      const bigJob = yield* Effect.fork(Effect.locally(compressInWorker("bz2", bigData.slice()), currentWorkInFlight, big))
      const sampler = yield* Effect.fork(
        Effect.forever(
          Effect.zipRight(
            Effect.sync(() => {
              seen.big.push(big.bytes())
              if (smallDone) seen.smallAfterItsJob.push(small.bytes())
            }),
            Effect.sleep("20 millis")
          )
        )
      )
      yield* Effect.locally(compressInWorker("bz2", smallData.slice()), currentWorkInFlight, small)
      smallDone = true
      yield* Fiber.join(bigJob)
      yield* Fiber.interrupt(sampler)
      expect(seen.big.some((n) => n > 0 && n < bigData.length)).toBe(true)
      expect(Math.max(...seen.big)).toBeLessThanOrEqual(bigData.length)
      // Once its own job was over, the small operation counted nothing, though the big job ran on.
      expect(seen.smallAfterItsJob.length).toBeGreaterThan(0)
      expect(seen.smallAfterItsJob.every((n) => n === 0)).toBe(true)
      expect(big.bytes()).toBe(0)
    }).pipe(Effect.provide(sharedCodecPool))
  )
})

describe("progress by object", () => {
  it.live("each stored object counts with its bytes: after k objects of a full backup, at least k chunks are done", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const chunk = 1024 * 1024
        const path = join(dir, "vol.img")
        yield* writeVolume(path, slowToCompress(6 * chunk))
        const seen = collect()
        yield* backup({ id: "k", volume_id: "v" }, path, { chunkSize: chunk, compression: "none", progressEveryObjects: 1, ...seen, progressInterval: "1 hour" })
        const during = seen.events.filter((e) => !e.done)
        expect(during.length).toBeGreaterThan(0)
        for (const e of during) expect(e.bytesDone, JSON.stringify(during.map((d) => [d.objects, d.bytesDone]))).toBeGreaterThanOrEqual(e.objects * chunk)
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})

describe("progress as a Stream", () => {
  it.live("a backup and a restore with their events consumed as Streams, side by side", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const size = 6 * 1024 * 1024
        const path = join(dir, "vol.img")
        yield* writeVolume(path, slowToCompress(size))
        const progress = yield* progressStream({ progressEveryObjects: 1, progressInterval: "50 millis" })
        const [record, events] = yield* Effect.all(
          [backup({ id: "s", volume_id: "v" }, path, { chunkSize: 1024 * 1024, compression: "zlib", ...progress.options }), Stream.runCollect(progress.events)],
          { concurrency: 2 }
        )
        expect(record.status).toBe("available")
        const list = Chunk.toReadonlyArray(events)
        expect(list.length).toBeGreaterThan(1)
        expect(list.at(-1)).toMatchObject({ operation: "backup", done: true, bytesDone: size, objects: 6 })
        expect(list.filter((e) => e.done)).toHaveLength(1)

        const restoring = yield* progressStream()
        const [, restoreEvents] = yield* Effect.all([restore("s", join(dir, "out.img"), restoring.options), Stream.runCollect(restoring.events)], {
          concurrency: 2
        })
        expect(Chunk.toReadonlyArray(restoreEvents).at(-1)).toMatchObject({ operation: "restore", done: true, bytesDone: size })
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.live("a failing operation ends its stream too (Effect.all interrupts it)", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const progress = yield* progressStream()
        const result = yield* Effect.exit(
          Effect.all([restore("missing", join(dir, "out.img"), progress.options), Stream.runDrain(progress.events)], { concurrency: 2 })
        ).pipe(Effect.timeout("5 seconds"))
        expect(result._tag).toBe("Failure")
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})

describe("the CLI's rate for the ETA", () => {
  it("is the average at first, then follows a lasting change without swinging on one pause", () => {
    const meter = makeRateMeter(10)
    // 10 MB/s for 20 s, sampled every half second.
    let rate = 0
    for (let t = 0.5; t <= 20; t += 0.5) rate = meter(t * 10e6, t)
    expect(rate).toBeCloseTo(10e6, -3)
    // A 2 s pause (one slow object): the rate dips, it does not collapse.
    rate = meter(200e6, 22)
    expect(rate).toBeGreaterThan(7e6)
    // Then 2 MB/s for good: within a few time constants the rate is there.
    for (let t = 22.5; t <= 80; t += 0.5) rate = meter(200e6 + (t - 22) * 2e6, t)
    expect(rate).toBeGreaterThan(1.9e6)
    expect(rate).toBeLessThan(2.2e6)
    // A repeated sample changes nothing.
    expect(meter(200e6 + 58 * 2e6, 80)).toBe(rate)
  })
})
