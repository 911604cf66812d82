/**
 * Volume sources: a backup from a Stream with a declared size (a pipe)
 * restores exactly, incrementals included; a stream that ends early, runs
 * past its size or fails is a VolumeError that claims nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Stream } from "effect"
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs"
import { join } from "node:path"
import { backup, BackupCatalog, fileSource, ObjectStore, restore, streamSource, type VolumeSource } from "../../src/index.js"
import { memoryServices, patternedVolume, withTempDir, writeVolume } from "../support/layers.js"

/** The bytes as a stream of uneven pieces, as a pipe delivers them. */
const piped = (bytes: Uint8Array, piece = 65_521) =>
  Stream.fromIterable(Array.from({ length: Math.ceil(bytes.length / piece) }, (_, i) => bytes.subarray(i * piece, (i + 1) * piece)))

const options = { chunkSize: 256 * 1024, shaBlockSize: 4096, compression: "zlib" }

describe("backup from a stream", () => {
  it.scoped("a full and an incremental backup of a stream restore byte for byte", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const first = patternedVolume(1_000_000, 3)
        yield* backup({ id: "f", volume_id: "v" }, yield* streamSource(piped(first), first.length, "pipe"), options)
        const second = Uint8Array.from(first)
        second.fill(9, 300_000, 310_000)
        const record = yield* backup({ id: "i", volume_id: "v", parent_id: "f" }, yield* streamSource(piped(second, 4096), second.length, "pipe"), options)
        expect(record.status).toBe("available")
        expect(record.object_count).toBe(1)
        yield* restore("i", join(dir, "out.img"))
        expect(Buffer.from(readFileSync(join(dir, "out.img"))).equals(Buffer.from(second))).toBe(true)
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.scoped("a stream shorter or longer than declared, or one that fails: VolumeError, nothing claimed or left", () =>
    Effect.gen(function* () {
      const bytes = patternedVolume(600_000, 5)
      const cases = [
        { source: streamSource(piped(bytes), bytes.length + 1, "pipe"), reason: "ended after 600000 bytes, before the 600001 bytes declared" },
        { source: streamSource(piped(bytes), bytes.length - 1, "pipe"), reason: "has more than the 599999 bytes declared" },
        { source: streamSource(Stream.concat(piped(bytes.subarray(0, 300_000)), Stream.fail(new Error("connection reset"))), bytes.length, "pipe"), reason: "read failed: connection reset" }
      ]
      for (const [i, c] of cases.entries()) {
        const error = yield* Effect.flip(backup({ id: `x${i}`, volume_id: "v" }, yield* c.source, options))
        expect(error._tag).toBe("VolumeError")
        expect(error.message).toBe(`volume pipe: ${c.reason}`)
        expect((yield* (yield* BackupCatalog).get(`x${i}`)).status).toBe("error")
      }
      const store = yield* ObjectStore
      expect(yield* store.list("volumebackups", "")).toEqual([])
    }).pipe(Effect.provide(memoryServices()))
  )

  it.scoped("objects are numbered in volume order when a later slot is read before an earlier one", () =>
    Effect.gen(function* () {
      // Three 4 MiB slots of 256 KiB chunks; the first slot's read ends only after the second's.
      const bytes = patternedVolume(12 * 1024 * 1024 - 4096, 11)
      const secondRead = yield* Deferred.make<void>()
      const source: VolumeSource = {
        name: "slow start",
        size: bytes.length,
        read: (offset, buffer) =>
          Effect.gen(function* () {
            if (offset < 4 * 1024 * 1024) yield* Deferred.await(secondRead)
            const n = Math.max(0, Math.min(buffer.length, bytes.length - offset))
            buffer.set(bytes.subarray(offset, offset + n))
            if (offset >= 4 * 1024 * 1024 && offset < 8 * 1024 * 1024) yield* Deferred.succeed(secondRead, undefined)
            return n
          })
      }
      const record = yield* backup({ id: "o", volume_id: "v" }, source, { ...options, concurrency: 4 })
      const store = yield* ObjectStore
      const names = yield* store.list("volumebackups", "")
      const metadata = JSON.parse(Buffer.from(yield* store.get("volumebackups", names.find((n) => n.endsWith("_metadata"))!)).toString()) as {
        objects: Array<Record<string, { offset: number }>>
      }
      const placed = metadata.objects.map((item) => Object.entries(item)[0]!).map(([name, entry]) => ({ index: Number(name.split("-").pop()), offset: entry.offset }))
      expect(placed.length).toBe(record.object_count)
      expect(placed.map((p) => p.index)).toEqual(placed.map((_, i) => i + 1))
      expect(placed.map((p) => p.offset)).toEqual(placed.map((_, i) => i * 256 * 1024))
    }).pipe(Effect.provide(memoryServices()))
  )

  it.scoped("a volume that cannot be read keeps the system's code and cause: ENOENT and EISDIR apart without parsing text", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const missing = yield* Effect.flip(fileSource(join(dir, "nope.img")))
        expect(missing).toMatchObject({ _tag: "VolumeError", code: "ENOENT", reason: "does not exist" })
        expect(missing.cause).toMatchObject({ _tag: "SystemError", reason: "NotFound" })
        yield* writeVolume(join(dir, "v.img"), patternedVolume(10_000))
        yield* backup({ id: "d", volume_id: "v" }, join(dir, "v.img"), options)
        const directory = yield* Effect.flip(restore("d", dir))
        expect(directory).toMatchObject({ _tag: "VolumeError", code: "EISDIR", reason: "is a directory, not a file or block device" })
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.scoped("a file source reads at any offset", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const bytes = patternedVolume(100_000, 7)
        yield* writeVolume(join(dir, "v.img"), bytes)
        const source = yield* fileSource(join(dir, "v.img"))
        expect(source.size).toBe(100_000)
        const buffer = new Uint8Array(1000)
        expect(yield* source.read(50_000, buffer)).toBe(1000)
        expect(Buffer.from(buffer).equals(Buffer.from(bytes.subarray(50_000, 51_000)))).toBe(true)
        expect(yield* source.read(99_500, buffer)).toBe(500)
        expect(yield* source.read(0, buffer)).toBe(1000)
        expect(Buffer.from(buffer).equals(Buffer.from(bytes.subarray(0, 1000)))).toBe(true)
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.scoped("a file that shrinks or grows while it is backed up: VolumeError, nothing claimed or left", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const path = join(dir, "v.img")
        yield* writeVolume(path, patternedVolume(600_000, 7))
        const source = yield* fileSource(path)
        // The file changes size after its size went into the record.
        const resized = (size: number): VolumeSource => ({ ...source, size })
        const grew = yield* Effect.flip(backup({ id: "g", volume_id: "v" }, resized(500_000), options))
        expect(grew.message).toBe(`volume ${path}: changed size during the backup: it has more than 500000 bytes`)
        const shrank = yield* Effect.flip(backup({ id: "s", volume_id: "v" }, resized(700_000), options))
        expect(shrank.message).toBe(`volume ${path}: changed size during the backup: read 600000 bytes, expected 700000`)
        const catalog = yield* BackupCatalog
        expect((yield* catalog.list({})).map((r) => r.status)).toEqual(["error", "error"])
        expect(yield* (yield* ObjectStore).list("volumebackups", "")).toEqual([])
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})

describe("a file source's extents", () => {
  it.scoped("a sparse file reports where its data is and leaves its holes out; a stream source cannot tell", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const MiB = 1024 * 1024
        const path = join(dir, "thin.img")
        // 8 MiB, data at 1-2 MiB and one 4 KiB block at 5 MiB, holes elsewhere (ext4 and tmpfs track 4 KiB blocks).
        const fd = openSync(path, "w")
        ftruncateSync(fd, 8 * MiB)
        writeSync(fd, new Uint8Array(MiB).fill(1), 0, MiB, MiB)
        writeSync(fd, new Uint8Array(4096).fill(2), 0, 4096, 5 * MiB)
        closeSync(fd)
        const source = yield* fileSource(path)
        expect(yield* source.extents!).toEqual([
          { start: MiB, end: 2 * MiB },
          { start: 5 * MiB, end: 5 * MiB + 4096 }
        ])
        const full = join(dir, "full.img")
        yield* writeVolume(full, patternedVolume(300_000, 1))
        expect(yield* (yield* fileSource(full)).extents!).toEqual([{ start: 0, end: 300_000 }])
        expect((yield* streamSource(Stream.empty, 10, "pipe")).extents).toBeUndefined()
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})
