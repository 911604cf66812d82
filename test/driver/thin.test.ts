/**
 * Thin volumes and changed-block incrementals at the library level: a
 * source that knows its holes, or its changes since the parent, is read
 * only where it must be, and the backup's objects and documents are byte
 * for byte those of a backup that read every byte.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fc from "effect/FastCheck"
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs"
import { join } from "node:path"
import { backup, BackupCatalog, fileSource, ObjectStore, restore, type VolumeSource } from "../../src/index.js"
import type { Range } from "../../src/driver/extents.js"
import { localServices, memoryServices, patternedVolume, withTempDir } from "../support/layers.js"

const BLOCK = 4096
const options = { chunkSize: 8 * BLOCK, shaBlockSize: BLOCK, compression: "zlib", now: new Date("2026-12-02T10:00:00Z") }
const createdAt = new Date("2026-12-02T09:00:00Z")

/** Every object of the store's default container, by name. */
const contents = Effect.gen(function* () {
  const store = yield* ObjectStore
  const names = yield* store.list("volumebackups", "")
  const all = new Map<string, string>()
  for (const name of names) all.set(name, Buffer.from(yield* store.get("volumebackups", name)).toString("base64"))
  return all
})

/** The source with a counter of the bytes it was asked to read. */
const counted = (source: VolumeSource) => {
  const counter = { bytes: 0 }
  return {
    counter,
    source: { ...source, read: (offset: number, buffer: Uint8Array) => Effect.tap(source.read(offset, buffer), (n) => Effect.sync(() => (counter.bytes += n))) }
  }
}

/** Writes `parts` into a sparse file of `size` bytes: what is not written is a hole. */
const sparseFile = (path: string, size: number, parts: ReadonlyArray<{ at: number; bytes: Uint8Array }>) => {
  const fd = openSync(path, "w")
  ftruncateSync(fd, size)
  for (const { at, bytes } of parts) writeSync(fd, bytes, 0, Math.min(bytes.length, size - at), at)
  closeSync(fd)
}

/** Overwrites parts of an existing file. */
const overwrite = (path: string, parts: ReadonlyArray<{ at: number; bytes: Uint8Array }>) => {
  const fd = openSync(path, "r+")
  for (const { at, bytes } of parts) writeSync(fd, bytes, 0, bytes.length, at)
  closeSync(fd)
}

/** Bytes of the blocks that meet `ranges` (what a reader that rounds out to blocks reads at most). */
const roundedOut = (ranges: ReadonlyArray<Range>, size: number) => {
  const blocks = new Set<number>()
  for (const { start, end } of ranges) for (let b = Math.floor(start / BLOCK); b * BLOCK < Math.min(end, size); b++) blocks.add(b)
  return [...blocks].reduce((sum, b) => sum + Math.min(BLOCK, size - b * BLOCK), 0)
}

const partsArbitrary = (size: number) =>
  fc.array(
    fc.record({ at: fc.nat({ max: size - 1 }), length: fc.integer({ min: 1, max: 5 * BLOCK }), seed: fc.integer({ min: 1, max: 1000 }), zero: fc.boolean() }),
    { maxLength: 6 }
  )
const bytesOf = ({ length, seed, zero }: { length: number; seed: number; zero: boolean }) => (zero ? new Uint8Array(length) : patternedVolume(length, seed, 5000, 100))

/** A source as a reader that cannot tell holes from data would see it. */
const dense = (source: VolumeSource): VolumeSource => {
  const { extents: _, ...rest } = source
  return rest
}

/**
 * A full backup of `path`, then `change` applied to it and an incremental:
 * the store's objects afterwards, and the bytes read.
 */
const chainOf = (path: string, reader: (source: VolumeSource) => VolumeSource, change: () => void) =>
  Effect.gen(function* () {
    const counter = { bytes: 0 }
    const run = (fields: { id: string; parent_id?: string }) =>
      Effect.gen(function* () {
        const source = counted(reader(yield* fileSource(path)))
        yield* backup({ ...fields, volume_id: "v", created_at: createdAt }, source.source, options)
        counter.bytes += source.counter.bytes
      }).pipe(Effect.scoped)
    yield* run({ id: "f" })
    change()
    yield* run({ id: "i", parent_id: "f" })
    const out = `${path}.restored`
    yield* restore("i", out)
    expect(Buffer.from(readFileSync(out)).equals(readFileSync(path))).toBe(true)
    return { objects: yield* contents, read: counter.bytes }
  }).pipe(Effect.provide(memoryServices()))

describe("thin volumes", () => {
  it.effect.prop(
    "a sparse file's backups (full, then incremental) are those of every byte read, and read only blocks with data",
    [fc.integer({ min: 3, max: 40 }), fc.integer({ min: 0, max: BLOCK - 1 }), fc.nat(), fc.nat()],
    ([blocks, tail, firstSeed, secondSeed]) =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const size = blocks * BLOCK + tail
          const parts = (seed: number) => fc.sample(partsArbitrary(size), { seed, numRuns: 1 })[0]!.map((p) => ({ at: p.at, bytes: bytesOf(p) }))
          const first = parts(firstSeed)
          const second = parts(secondSeed).map((p) => ({ at: p.at, bytes: p.bytes.subarray(0, size - p.at) }))
          const paths = [join(dir, "thin.img"), join(dir, "dense.img")] as const
          for (const path of paths) sparseFile(path, size, first)
          const dataBytes = (path: string) =>
            Effect.scoped(Effect.flatMap(fileSource(path), (source) => Effect.map(source.extents!, (extents) => roundedOut(extents, size))))
          const firstData = yield* dataBytes(paths[0])
          const thin = yield* chainOf(paths[0], (source) => source, () => overwrite(paths[0], second))
          const secondData = yield* dataBytes(paths[0])
          const everyByte = yield* chainOf(paths[1], dense, () => overwrite(paths[1], second))
          expect(thin.objects).toEqual(everyByte.objects)
          expect(everyByte.read).toBe(2 * size)
          expect(thin.read).toBeLessThanOrEqual(firstData + secondData)
        })
      ).pipe(Effect.provide(localServices)),
    { fastCheck: { numRuns: 30 } }
  )
})

/** A source that reports `changes` as its changes since the parent (a dirty bitmap, simulated). */
const withChanges = (source: VolumeSource, changes: ReadonlyArray<Range>): VolumeSource => ({ ...source, changes: Effect.succeed(changes) })

/** Sorted, merged ranges. */
const merged = (ranges: ReadonlyArray<Range>) => {
  const sorted = [...ranges].sort((a, b) => a.start - b.start)
  const out: Array<Range> = []
  for (const r of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && r.start <= last.end) out[out.length - 1] = { start: last.start, end: Math.max(last.end, r.end) }
    else out.push(r)
  }
  return out
}

describe("thin volumes, by example", () => {
  it.scoped("16 MiB holding 8 KiB of data: 2 blocks read, and the all-hole chunks are one stored object's bytes", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const path = join(dir, "thin.img")
        sparseFile(path, 16 * 1024 * 1024, [{ at: 5 * 1024 * 1024, bytes: patternedVolume(2 * BLOCK, 7, 5000, 10) }])
        const source = counted(yield* fileSource(path))
        const record = yield* backup({ id: "f", volume_id: "v" }, source.source, options)
        expect(source.counter.bytes).toBe(2 * BLOCK)
        expect(record.object_count).toBe(16 * 1024 * 1024 / options.chunkSize)
        const objects = yield* contents
        const data = [...objects.entries()].filter(([name]) => /-\d{5}$/.test(name)).map(([, bytes]) => bytes)
        expect(new Set(data).size).toBe(2)
        yield* restore("f", join(dir, "out.img"))
        expect(Buffer.from(readFileSync(join(dir, "out.img"))).equals(readFileSync(path))).toBe(true)
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})

describe("changed-block incrementals (a source that knows its changes)", () => {
  it.effect.prop(
    "with changes that cover every write, the incremental's documents and objects are the full-read incremental's, and only changed blocks are read",
    [fc.integer({ min: 3, max: 40 }), fc.integer({ min: 0, max: BLOCK - 1 }), fc.nat(), fc.nat(), fc.boolean()],
    ([blocks, tail, firstSeed, secondSeed, extra]) =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const size = blocks * BLOCK + tail
          const first = patternedVolume(size, (firstSeed % 100) + 1)
          const writes = fc.sample(partsArbitrary(size), { seed: secondSeed, numRuns: 1 })[0]!.map((p) => ({ at: p.at, bytes: bytesOf(p).subarray(0, size - p.at) }))
          const written = writes.map(({ at, bytes }) => ({ start: at, end: at + bytes.length }))
          // A bitmap may report more than was written (its granularity, or a write of the same bytes).
          const reported = merged(extra ? [...written, { start: 0, end: Math.min(size, 2 * BLOCK + 1) }] : written)
          const paths = [join(dir, "bitmap.img"), join(dir, "full-read.img")] as const
          const run = (path: string, changes: boolean) =>
            Effect.gen(function* () {
              sparseFile(path, size, [{ at: 0, bytes: first }])
              yield* Effect.scoped(Effect.flatMap(fileSource(path), (source) => backup({ id: "f", volume_id: "v", created_at: createdAt }, source, options)))
              overwrite(path, writes)
              const source = counted(yield* fileSource(path))
              yield* backup({ id: "i", volume_id: "v", parent_id: "f", created_at: createdAt }, changes ? withChanges(source.source, reported) : source.source, options)
              yield* restore("i", `${path}.out`)
              expect(Buffer.from(readFileSync(`${path}.out`)).equals(readFileSync(path))).toBe(true)
              return { objects: yield* contents, read: source.counter.bytes }
            }).pipe(Effect.scoped, Effect.provide(memoryServices()))
          const bitmap = yield* run(paths[0], true)
          const fullRead = yield* run(paths[1], false)
          expect(bitmap.objects).toEqual(fullRead.objects)
          expect(fullRead.read).toBe(size)
          expect(bitmap.read).toBeLessThanOrEqual(roundedOut(reported, size))
        })
      ).pipe(Effect.provide(localServices)),
    { fastCheck: { numRuns: 30 } }
  )

  it.scoped("changes that miss a write are trusted (the written block is not read), so the user must keep the bitmap accurate", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const path = join(dir, "v.img")
        const size = 16 * BLOCK
        sparseFile(path, size, [{ at: 0, bytes: patternedVolume(size, 3) }])
        yield* backup({ id: "f", volume_id: "v" }, yield* fileSource(path), options)
        overwrite(path, [{ at: 3 * BLOCK, bytes: new Uint8Array(10).fill(7) }, { at: 9 * BLOCK, bytes: new Uint8Array(10).fill(7) }])
        yield* backup({ id: "i", volume_id: "v", parent_id: "f" }, withChanges(yield* fileSource(path), [{ start: 3 * BLOCK, end: 3 * BLOCK + 10 }]), options)
        yield* restore("i", join(dir, "out.img"))
        const out = readFileSync(join(dir, "out.img"))
        expect(out[3 * BLOCK]).toBe(7)
        expect(out[9 * BLOCK]).not.toBe(7)
      })
    ).pipe(Effect.provide(memoryServices()))
  )

  it.scoped("refused before any record: changes with a full backup, and changes on a volume of another size than the parent's", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const path = join(dir, "v.img")
        sparseFile(path, 16 * BLOCK, [{ at: 0, bytes: patternedVolume(16 * BLOCK, 3) }])
        const full = yield* Effect.flip(backup({ id: "x", volume_id: "v" }, withChanges(yield* fileSource(path), []), options))
        expect(full).toMatchObject({ _tag: "InvalidRequest" })
        expect(full.message).toContain("this is a full backup")
        yield* backup({ id: "f", volume_id: "v" }, yield* fileSource(path), options)
        const smaller = join(dir, "small.img")
        sparseFile(smaller, 15 * BLOCK, [])
        const sized = yield* Effect.flip(backup({ id: "y", volume_id: "v", parent_id: "f" }, withChanges(yield* fileSource(smaller), []), options))
        expect(sized.message).toBe(`${smaller} is ${15 * BLOCK} bytes but parent backup f is of ${16 * BLOCK}: its changes (a dirty bitmap) cannot be since that backup`)
        const catalog = yield* BackupCatalog
        expect((yield* catalog.list({})).map((r) => r.id)).toEqual(["f"])
      })
    ).pipe(Effect.provide(memoryServices()))
  )
})
