/**
 * Documents from a store are untrusted: a restore never exits 0 with bytes
 * that are not the backup's, and no document, however shaped, makes the
 * engine die (exit 1 in the CLI). Each case edits a real backup's documents
 * the way the fuzzer that found these did: edited offsets and lengths,
 * overlaps, gaps, objects outside the volume, forged md5s, deep nesting,
 * huge numbers and counts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { createHash } from "node:crypto"
import { backup, BackupCatalog, ObjectStore, restore, verify, type BackupOptions } from "../../src/index.js"
import { typedFailure } from "../support/inspect.js"
import { memoryServices, patternedVolume, withTempDir, writeVolume } from "../support/layers.js"

const options: BackupOptions = { chunkSize: 8192, shaBlockSize: 1024, compression: "none" }
const SIZE = 64 * 1024 + 1000 // the last object is short

type Json = Record<string, any>

const documentName = (id: string, suffix: string) =>
  Effect.map(Effect.flatMap(BackupCatalog, (c) => c.get(id)), (r) => ({ container: r.container!, name: `${r.service_metadata}${suffix}` }))

/** Rewrites a document of backup `id` as text. */
const editText = (id: string, suffix: string, change: (text: string) => string) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const { container, name } = yield* documentName(id, suffix)
    const text = new TextDecoder().decode(yield* store.get(container, name))
    yield* store.put(container, name, new TextEncoder().encode(change(text)))
  })

/** Rewrites the metadata of backup `id` as JSON. */
const editMetadata = (id: string, change: (metadata: Json) => void) =>
  editText(id, "_metadata", (text) => {
    const metadata = JSON.parse(text) as Json
    change(metadata)
    return JSON.stringify(metadata)
  })

/** The entry of the n-th object (from 0) of a metadata document. */
const entry = (metadata: Json, n: number): Json => Object.values(metadata.objects[n] as Json)[0] as Json
const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex")

/** Replaces the bytes of data object n of backup `id` and rewrites its md5 to match: a forgery that keeps the structure. */
const forge = (id: string, n: number, bytes: (old: Uint8Array) => Uint8Array) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const { container, name: metadataName } = yield* documentName(id, "_metadata")
    const metadata = JSON.parse(new TextDecoder().decode(yield* store.get(container, metadataName))) as Json
    const name = Object.keys(metadata.objects[n] as Json)[0]!
    const fake = bytes(yield* store.get(container, name))
    yield* store.put(container, name, fake)
    entry(metadata, n).md5 = md5(fake)
    entry(metadata, n).length = fake.length
    yield* store.put(container, metadataName, new TextEncoder().encode(JSON.stringify(metadata)))
  })

/** A full backup of `volume` as "full", then one of `next` as "inc" (when given), in `dir`. */
const backUp = (dir: string, volume: Uint8Array, next?: Uint8Array) =>
  Effect.gen(function* () {
    const path = join(dir, "disk.img")
    yield* writeVolume(path, volume)
    yield* backup({ id: "full", volume_id: "v" }, path, options)
    if (next !== undefined) {
      yield* writeVolume(path, next)
      yield* backup({ id: "inc", volume_id: "v", parent_id: "full" }, path, options)
    }
  })

const edited = (volume: Uint8Array) => {
  const next = Uint8Array.from(volume)
  next.fill(7, 10_000, 13_000) // blocks 9-12
  next.fill(9, 40_000, 41_000) // blocks 39-40
  return next
}

interface Case {
  readonly name: string
  readonly damage: Effect.Effect<unknown, unknown, ObjectStore | BackupCatalog>
  /** the backup restored: the incremental unless said */
  readonly id?: "full" | "inc"
  readonly tag?: string
  readonly mentions: ReadonlyArray<string>
}

const structural: ReadonlyArray<Case> = [
  { name: "an offset shifted by 512 bytes onto the next object", damage: editMetadata("full", (m) => (entry(m, 2).offset += 512)), id: "full", mentions: ["-00003", "bytes 16384-16896"] },
  { name: "an offset shifted back by 512 bytes", damage: editMetadata("full", (m) => (entry(m, 2).offset -= 512)), id: "full", mentions: ["overlaps"] },
  { name: "an offset shifted by 1 MiB, outside the volume", damage: editMetadata("full", (m) => (entry(m, 2).offset += 1 << 20)), id: "full", mentions: ["outside the", "-00003"] },
  { name: "an offset of 4294967296", damage: editMetadata("full", (m) => (entry(m, 8).offset = 4294967296)), id: "full", mentions: ["outside the"] },
  { name: "the last object's length set to 0", damage: editMetadata("full", (m) => (entry(m, m.objects.length - 1).length = 0)), id: "full", mentions: ["empty"] },
  { name: "all offsets 0", damage: editMetadata("full", (m) => m.objects.forEach((_: unknown, i: number) => (entry(m, i).offset = 0))), id: "full", mentions: ["overlaps"] },
  {
    name: "a full backup with a gap (an object dropped from the list and the store)",
    damage: Effect.gen(function* () {
      const { container, name } = yield* documentName("full", "-00004")
      yield* (yield* ObjectStore).delete(container, name)
      yield* editMetadata("full", (m) => m.objects.splice(3, 1))
    }),
    id: "full",
    mentions: ["bytes 24576-32768", "in no object of the full backup"]
  },
  { name: "two objects of an incremental overlapping", damage: editMetadata("inc", (m) => (entry(m, 1).offset = entry(m, 0).offset + 1024)), mentions: ["backup inc", "overlaps"] },
  { name: "an incremental object outside the volume", damage: editMetadata("inc", (m) => (entry(m, 1).offset = SIZE)), mentions: ["backup inc", "outside the"] },
  { name: "an offset near 1e15", damage: editMetadata("full", (m) => (entry(m, 1).offset = 1e15)), id: "full", mentions: ["outside the"] },
  { name: "a length near 1e15", damage: editMetadata("full", (m) => (entry(m, 1).length = 30517578157 * 32768)), id: "full", mentions: ["longer than"] },
  { name: "an offset that is not a safe integer", damage: editText("full", "_metadata", (t) => t.replace(/"offset": 8192/, '"offset": 1e300')), id: "full", mentions: ["offset must be a non-negative integer"] },
  {
    name: "metadata nested 5,000 levels deep",
    damage: editText("full", "_metadata", (t) => t.replace(/^\{/, `{"extra_metadata": ${"[".repeat(5000)}${"]".repeat(5000)}, `)),
    id: "full",
    mentions: ["nested more than"]
  },
  {
    name: "an objects list nested 100,000 levels deep",
    damage: editText("full", "_metadata", (t) => t.replace(/"objects": \[/, `"objects": [${"[".repeat(100_000)}${"]".repeat(100_000)}, `)),
    id: "full",
    mentions: ["nested more than"]
  },
  {
    name: "the record's volume size smaller than the objects",
    damage: Effect.flatMap(BackupCatalog, (c) => c.update("full", (r) => ({ ...r, volume_size_bytes: SIZE - 1 }))),
    id: "full",
    mentions: ["outside the"]
  },
  {
    name: "the record's volume size larger than the objects",
    damage: Effect.flatMap(BackupCatalog, (c) => c.update("full", (r) => ({ ...r, volume_size_bytes: SIZE + 4096 }))),
    id: "full",
    mentions: ["in no object of the full backup"]
  },
  {
    name: "an incremental's volume larger than its chain covers",
    damage: Effect.flatMap(BackupCatalog, (c) => c.update("inc", (r) => ({ ...r, volume_size_bytes: SIZE + 4096 }))),
    mentions: ["in no object of the chain"]
  }
]

describe("untrusted documents", () => {
  for (const c of structural) {
    it.live(`${c.name}: InvalidBackup before any byte is written; plain verify reports it too`, () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const volume = patternedVolume(SIZE)
          yield* backUp(dir, volume, edited(volume))
          yield* c.damage
          const target = join(dir, "restored.img")
          const error = typedFailure(yield* Effect.exit(restore(c.id ?? "inc", target)))
          expect(error._tag).toBe(c.tag ?? "InvalidBackup")
          for (const words of c.mentions) expect(String((error as Error).message)).toContain(words)
          expect(existsSync(target)).toBe(false)
          const report = yield* verify(c.id ?? "inc")
          expect(report.problems.length).toBeGreaterThan(0)
        }).pipe(Effect.provide(memoryServices()))
      )
    )
  }

  it.live("a forgery that rewrote the md5: a restore refuses it by its sha256 before writing the object; verify --full finds it", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const volume = patternedVolume(SIZE)
        yield* backUp(dir, volume, edited(volume))
        yield* forge("inc", 0, (old) => old.map((b) => b ^ 0x55))
        const target = join(dir, "restored.img")
        const error = typedFailure(yield* Effect.exit(restore("inc", target, { volumeIsNew: true })))
        expect(error).toMatchObject({ _tag: "IntegrityError", backupId: "inc" })
        expect(String((error as Error).message)).toMatch(/\(sha256 [0-9a-f]{64}, expected [0-9a-f]{64} for sha block 9 \(offset 9216\)/)
        // None of the forged object was written (its range is still a hole of zeros).
        expect(readFileSync(target).subarray(10_000, 13_000).every((b) => b === 0)).toBe(true)
        const plain = yield* verify("inc")
        expect(plain.problems).toEqual([])
        // Without the sha256 check the forgery restores: what md5s alone cannot tell.
        yield* restore("inc", join(dir, "unchecked.img"), { verifySha256: false })
        const full = yield* verify("inc", { full: true })
        expect(full.problems.map((p) => p.problem).join("\n")).toContain("does not match the sha256 file")
      }).pipe(Effect.provide(memoryServices()))
    )
  )

  it.live("a restore of an intact chain checks every sha block and restores it; without the check it restores the same bytes", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const volume = patternedVolume(SIZE)
        const next = edited(volume)
        yield* backUp(dir, volume, next)
        const target = join(dir, "restored.img")
        const result = yield* restore("inc", target)
        expect(result.sha256Checked).toBe(true)
        expect(readFileSync(target).equals(Buffer.from(next))).toBe(true)
        const unchecked = yield* restore("inc", join(dir, "unchecked.img"), { verifySha256: false })
        expect(unchecked.sha256Checked).toBe(false)
        expect(readFileSync(join(dir, "unchecked.img")).equals(Buffer.from(next))).toBe(true)
      }).pipe(Effect.provide(memoryServices()))
    )
  )

  it.live("a sha256 list that does not fit the volume, or nested 100,000 deep: InvalidBackup for a restore and a problem for verify --full", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const volume = patternedVolume(SIZE)
        yield* backUp(dir, volume)
        yield* editText("full", "_sha256file", (t) => t.replace(/"sha256s": \[\s*"[0-9a-f]{64}",/, '"sha256s": ['))
        const short = typedFailure(yield* Effect.exit(restore("full", join(dir, "a.img"))))
        expect(short).toMatchObject({ _tag: "InvalidBackup" })
        expect(String((short as Error).message)).toContain("blocks")
        yield* editText("full", "_sha256file", (t) => t.replace(/"sha256s": \[/, `"sha256s": [${"[".repeat(100_000)}${"]".repeat(100_000)}, `))
        const deep = typedFailure(yield* Effect.exit(restore("full", join(dir, "b.img"))))
        expect(String((deep as Error).message)).toContain("nested more than")
        const report = yield* verify("full", { full: true })
        expect(report.problems.map((p) => p.problem).join("\n")).toContain("nested more than")
      }).pipe(Effect.provide(memoryServices()))
    )
  )

  it.live("a restore writes exactly the record's volume size: a shrunk incremental restores to its own size; a larger existing target keeps its tail", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const volume = patternedVolume(SIZE)
        const shrunk = edited(volume).subarray(0, 40 * 1024 + 100)
        yield* backUp(dir, volume, shrunk)
        const target = join(dir, "restored.img")
        yield* restore("inc", target)
        expect(statSync(target).size).toBe(shrunk.length)
        expect(readFileSync(target).equals(Buffer.from(shrunk))).toBe(true)
        const bigger = join(dir, "bigger.img")
        writeFileSync(bigger, Buffer.alloc(SIZE + 5000, 0xee))
        yield* restore("full", bigger)
        const restored = readFileSync(bigger)
        expect(restored.length).toBe(SIZE + 5000)
        expect(restored.subarray(0, SIZE).equals(Buffer.from(volume))).toBe(true)
        expect(restored.subarray(SIZE).every((b) => b === 0xee)).toBe(true)
      }).pipe(Effect.provide(memoryServices()))
    )
  )

  it.live("50,000 bogus objects: one short error line, refused quickly", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        yield* backUp(dir, patternedVolume(SIZE))
        yield* editMetadata("full", (m) => {
          for (let i = 0; i < 50_000; i++) m.objects.push({ [`bogus-${"x".repeat(100)}-${i}`]: { compression: null, length: 1, md5: "0".repeat(32), offset: 0 } })
        })
        const started = Date.now()
        const error = typedFailure(yield* Effect.exit(restore("full", join(dir, "restored.img"))))
        expect(error._tag).toBe("InvalidBackup")
        const message = String((error as Error).message)
        expect(message).toContain("and 49995 more")
        expect(message.length).toBeLessThan(2000)
        expect(Date.now() - started).toBeLessThan(20_000)
        const report = yield* verify("full")
        expect(JSON.stringify(report.problems).length).toBeLessThan(4000)
      }).pipe(Effect.provide(memoryServices()))
    )
  )

  it.live("1,000,000 bogus objects are refused as InvalidBackup, not a crash", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        yield* backUp(dir, patternedVolume(SIZE))
        yield* editMetadata("full", (m) => {
          for (let i = 0; i < 1_000_000; i++) m.objects.push({ [`b${i}`]: { compression: null, length: 1, md5: "0".repeat(32), offset: i } })
        })
        const error = typedFailure(yield* Effect.exit(restore("full", join(dir, "restored.img"))))
        expect(error._tag).toBe("InvalidBackup")
        expect(String((error as Error).message).length).toBeLessThan(2000)
        const exit = yield* Effect.exit(verify("full"))
        expect(Exit.isSuccess(exit)).toBe(true)
      }).pipe(Effect.provide(memoryServices()))
    ),
    120_000
  )
})
