/**
 * Restores to ordered targets (a Stream, a writable): the volume comes out
 * front to back, whatever the chain, with each object checked before any
 * of its bytes are emitted.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { execFileSync, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { PassThrough } from "node:stream"
import { backup, BackupCatalog, orderedTarget, restoreStream, restore, writableTarget } from "../../src/index.js"
import { memoryServices, patternedVolume, tamper, withTempDir, writeVolume } from "../support/layers.js"

const MiB = 1024 * 1024
// Objects of 5 MiB: more than half a restore slot (8 MiB) each, so the
// restore runs several jobs side by side and must put them back in order.
const options = { chunkSize: 5 * MiB, shaBlockSize: 64 * 1024, compression: "zstd" }

/** A 15 MiB volume, its full backup "full", and an incremental "inc" whose changed blocks sit inside the full backup's second and third chunks. */
const withChain = <A, E, R>(use: (volume: Uint8Array) => Effect.Effect<A, E, R>) =>
  withTempDir((dir) =>
    Effect.gen(function* () {
      const volume = patternedVolume(15 * MiB, 3)
      const path = join(dir, "vol.img")
      yield* writeVolume(path, volume)
      yield* backup({ id: "full", volume_id: "v" }, path, options)
      // 3.75 MiB inside the second chunk: the incremental's object and the
      // chunk around it do not fit one slot together, yet must go out together.
      volume.fill(7, 5.25 * MiB, 9 * MiB)
      volume.fill(9, 12 * MiB + 500, 12 * MiB + 70_000)
      yield* writeVolume(path, volume)
      yield* backup({ id: "inc", volume_id: "v", parent_id: "full" }, path, options)
      return yield* use(volume)
    })
  )

const concatenated = (chunks: Chunk.Chunk<Uint8Array>) => Buffer.concat(Chunk.toReadonlyArray(chunks))

describe("restore to an ordered target", () => {
  it.effect("a chain streams in volume order at any concurrency, every byte once", () =>
    withChain((volume) =>
      Effect.gen(function* () {
        for (const concurrency of [1, 2, 3, 8]) {
          const bytes = concatenated(yield* Stream.runCollect(restoreStream("inc", { concurrency })))
          expect(bytes.length).toBe(volume.length)
          expect(bytes.equals(volume)).toBe(true)
        }
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("a target of the caller's own (here: a hash) and a Node writable get the same volume", () =>
    withChain((volume) =>
      Effect.gen(function* () {
        const hash = createHash("sha256")
        yield* restore("inc", orderedTarget("hash", (bytes) => Effect.sync(() => void hash.update(bytes))))
        expect(hash.digest("hex")).toBe(createHash("sha256").update(volume).digest("hex"))

        const sink = new PassThrough()
        const received: Array<Buffer> = []
        sink.on("data", (chunk: Buffer) => received.push(chunk))
        const result = yield* restore("inc", writableTarget(sink, "a pipe"), { concurrency: 3 })
        expect(result.bytes).toBe(volume.length)
        expect(Buffer.concat(received).equals(volume)).toBe(true)
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("a corrupt object fails the stream before any of its bytes, and what came before is the volume's start", () =>
    withChain((volume) =>
      Effect.gen(function* () {
        // The full backup's second object (5-10 MiB), stored compressed: a flipped byte inside breaks it.
        yield* tamper("full", "-00002", (stored) => stored.map((x, i) => (i === Math.floor(stored.length / 2) ? x ^ 0xff : x)))
        const emitted: Array<Uint8Array> = []
        const error = yield* Stream.runForEach(restoreStream("inc", { concurrency: 3 }), (bytes) => Effect.sync(() => void emitted.push(bytes))).pipe(Effect.flip)
        expect(["IntegrityError", "CompressionError"]).toContain(error._tag)
        expect(error.message).toContain("-00002")
        const prefix = Buffer.concat(emitted)
        expect(prefix.length).toBeLessThanOrEqual(5 * MiB)
        expect(prefix.equals(volume.subarray(0, prefix.length))).toBe(true)
        expect((yield* (yield* BackupCatalog).get("inc")).status).toBe("available")
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("a consumer that stops early ends the restore, and the backup is available again", () =>
    withChain((volume) =>
      Effect.gen(function* () {
        const first = concatenated(yield* Stream.runCollect(restoreStream("inc").pipe(Stream.take(2))))
        expect(first.equals(volume.subarray(0, first.length))).toBe(true)
        expect((yield* (yield* BackupCatalog).get("inc")).status).toBe("available")
        // And it restores in full afterwards.
        expect(concatenated(yield* Stream.runCollect(restoreStream("inc"))).equals(volume)).toBe(true)
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.live("a named pipe by path is written in order (no offsets), as standard output would be", () =>
    withTempDir((dir) =>
      withChain((volume) =>
        Effect.gen(function* () {
          const fifo = join(dir, "volume.fifo")
          const out = join(dir, "from-fifo.img")
          execFileSync("mkfifo", [fifo])
          const reader = spawn("sh", ["-c", `cat '${fifo}' > '${out}'`])
          const closed = new Promise<number | null>((resolve) => reader.on("close", resolve))
          yield* restore("inc", fifo, { concurrency: 3 })
          // The restore closed its end with its scope: the reader sees the end of the pipe.
          expect(yield* Effect.promise(() => closed)).toBe(0)
          expect(readFileSync(out).equals(volume)).toBe(true)
        })
      )
    ).pipe(Effect.provide(memoryServices()))
  )

  it.effect("an ordered target refuses a write out of order (a defect of the caller)", () =>
    Effect.gen(function* () {
      const target = yield* orderedTarget("test", () => Effect.void)(10)
      yield* target.write(0, new Uint8Array(4))
      const exit = yield* Effect.exit(target.write(6, new Uint8Array(4)))
      expect(exit._tag).toBe("Failure")
      expect(String(exit)).toMatch(/a write at 6, but the volume is at 4/)
    }).pipe(Effect.scoped)
  )
})
