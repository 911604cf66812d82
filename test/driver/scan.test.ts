/**
 * Lost catalog, the bad inputs: a store whose backups were written with a
 * catalog that is gone, then damaged. Scan imports what checks out, reports
 * each broken backup with its reason (a corrupted `_metadata`, a missing
 * data object, metadata that claims another backup's id, object names that
 * escape the root, a name that is no backup's), leaves the incrementals of
 * a broken or missing parent and the members of a parent cycle out as
 * orphans, and leaves records the catalog has alone.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { backup, BackupCatalog, layerMemoryCatalog, layerPosix, restore, scan, type BackupOptions, type BackupRecord, type ScanEntry } from "../../src/index.js"
import { typedFailure } from "../support/inspect.js"
import { localServices, patternedVolume, withTempDir } from "../support/layers.js"

const options: BackupOptions = { chunkSize: 8192, shaBlockSize: 1024, compression: "zlib" }
const SIZE = 64 * 1024 + 1000

/** The posix files of a backup written by `backup` (its own container directory). */
const filesOf = (root: string, record: BackupRecord) => {
  const dir = join(root, record.container!)
  return { dir, names: readdirSync(dir).filter((name) => name.startsWith(record.service_metadata!)) }
}

const editMetadata = (root: string, record: BackupRecord, change: (metadata: Record<string, any>) => void, document = "metadata") => {
  const path = join(root, record.container!, `${record.service_metadata}_${document}`)
  const metadata = JSON.parse(readFileSync(path, "utf8"))
  change(metadata)
  writeFileSync(path, JSON.stringify(metadata))
}

/**
 * Writes, with a catalog that is then thrown away: volume a (full + incr),
 * b (full, its _metadata corrupted, + incr), c (full, one data object
 * missing), d (full, whose record is kept), e (full, its object names
 * escaping the root), f (a copy of d's objects under another id), g (full
 * + two incrementals whose parents form a cycle), h (an incr whose full is
 * gone from the store), i (an incr whose documents name another volume
 * than its full's), and a `_metadata` file that names no backup.
 */
const damagedStore = (root: string) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const volume = (seed: number) => {
      const path = join(root, "..", `volume-${seed}.img`)
      writeFileSync(path, patternedVolume(SIZE, seed))
      return path
    }
    const changed = (path: string, at: number) => {
      const bytes = readFileSync(path)
      bytes.fill(9, at, at + 5000)
      writeFileSync(path, bytes)
      return path
    }
    const full = (id: string, seed: number) => backup({ id, volume_id: `vol-${id}` }, volume(seed), options)
    const incr = (id: string, parent: BackupRecord, path: string) => backup({ id, volume_id: parent.volume_id, parent_id: parent.id }, path, options)

    const a = yield* full("a-full", 1)
    const aIncr = yield* incr("a-incr", a, changed(join(root, "..", "volume-1.img"), 20_000))
    const b = yield* full("b-full", 2)
    yield* incr("b-incr", b, changed(join(root, "..", "volume-2.img"), 3000))
    writeFileSync(join(root, b.container!, `${b.service_metadata}_metadata`), '{"version": "1.0.0", "objects": [')
    const c = yield* full("c-full", 3)
    unlinkSync(join(root, c.container!, `${c.service_metadata}-00002`))
    const d = yield* full("d-full", 4)
    const e = yield* full("e-full", 5)
    editMetadata(root, e, (metadata) => {
      metadata.objects = metadata.objects.map((item: Record<string, unknown>, i: number) => ({ [`../../../outside-${i}`]: Object.values(item)[0] }))
    })
    // f: d's documents and objects under f's prefix, in d's container.
    const { dir, names } = filesOf(root, d)
    for (const name of names) copyFileSync(join(dir, name), join(dir, name.replace("_backup_d-full", "_backup_f-full")))
    const g = yield* full("g-full", 6)
    const g1 = yield* incr("g-incr1", g, changed(join(root, "..", "volume-6.img"), 100))
    const g2 = yield* incr("g-incr2", g1, changed(join(root, "..", "volume-6.img"), 9000))
    editMetadata(root, g1, (metadata) => void (metadata.parent_id = g2.id))
    const h = yield* full("h-full", 7)
    yield* incr("h-incr", h, changed(join(root, "..", "volume-7.img"), 500))
    rmSync(join(root, h.container!), { recursive: true })
    const i = yield* full("i-full", 8)
    const iIncr = yield* incr("i-incr", i, changed(join(root, "..", "volume-8.img"), 700))
    for (const document of ["metadata", "sha256file"]) editMetadata(root, iIncr, (doc) => void (doc.volume_id = "vol-other"), document)
    writeFileSync(join(root, d.container!, "junk_metadata"), "{}")
    return { kept: yield* catalog.get(d.id), lost: yield* catalog.get(aIncr.id) }
  }).pipe(Effect.provide(layerMemoryCatalog()))

const withStore = <A, E>(use: (root: string) => Effect.Effect<A, E, any>) =>
  withTempDir((dir) => {
    const root = join(dir, "store")
    mkdirSync(root)
    return use(root).pipe(Effect.provide(layerPosix({ root }).pipe(Layer.provideMerge(localServices))))
  }) as Effect.Effect<A, E>

const byId = (entries: ReadonlyArray<ScanEntry>) => new Map(entries.map((e) => [e.backupId, e]))

describe("scan of a damaged store", () => {
  it.live("imports what checks out and reports every broken backup and orphan with its reason", () =>
    withStore((root) =>
      Effect.gen(function* () {
        const { kept, lost } = yield* damagedStore(root)
        const catalog = yield* BackupCatalog
        yield* catalog.create(kept)
        const report = yield* scan()
        const entries = byId(report.entries)
        const outcome = (id: string) => [entries.get(id)?.outcome, entries.get(id)?.reason]
        expect(outcome("a-full")).toEqual(["imported", undefined])
        expect(outcome("a-incr")).toEqual(["imported", undefined])
        expect(outcome("d-full")).toEqual(["existing", undefined])
        expect(outcome("g-full")).toEqual(["imported", undefined])
        expect(outcome("b-full")[0]).toBe("invalid")
        expect(outcome("b-full")[1]).toMatch(/metadata is not valid UTF-8 JSON/)
        expect(outcome("b-incr")).toEqual(["orphan", "parent backup b-full is broken"])
        expect(outcome("c-full")[0]).toBe("invalid")
        expect(outcome("c-full")[1]).toMatch(/actual object list does not match the metadata: missing .*c-full-00002/)
        expect(outcome("e-full")[0]).toBe("invalid")
        expect(outcome("e-full")[1]).toMatch(/invalid container or object name "\.\.\/\.\.\/\.\.\/outside-0"/)
        expect(outcome("f-full")[0]).toBe("invalid")
        expect(outcome("f-full")[1]).toMatch(/metadata belongs to backup d-full/)
        expect(outcome("g-incr1")[0]).toBe("orphan")
        expect(outcome("g-incr2")[0]).toBe("orphan")
        expect(outcome("g-incr1")[1]).toMatch(/^the parent chain is a cycle: g-incr(1 -> g-incr2 -> g-incr1|2 -> g-incr1 -> g-incr2)$/)
        expect(outcome("g-incr2")[1]).toBe(outcome("g-incr1")[1])
        expect(outcome("h-incr")).toEqual(["orphan", "parent backup h-full is not in the store or the catalog"])
        expect(outcome("junk_metadata")[1]).toMatch(/does not name a backup/)
        expect(outcome("i-full")).toEqual(["imported", undefined])
        expect(outcome("i-incr")).toEqual(["invalid", "it is a backup of volume vol-other, but its parent backup i-full is of volume vol-i-full"])
        expect(report.entries).toHaveLength(15)

        const records = new Map((yield* catalog.list()).map((r) => [r.id, r]))
        expect([...records.keys()].sort()).toEqual(["a-full", "a-incr", "d-full", "g-full", "i-full"])
        // The record the catalog had is left as it was.
        expect(records.get("d-full")).toEqual(kept)
        // The rebuilt record is the lost one, but for what only the catalog knew (when it was last updated).
        const { updated_at: _, ...rebuilt } = records.get("a-incr")!
        const { updated_at: __, ...original } = lost
        expect(rebuilt).toEqual({ ...original, volume_size_bytes: SIZE })
        const target = join(root, "..", "restored.img")
        yield* restore("a-incr", target, { volumeIsNew: true })
        expect(Buffer.compare(readFileSync(target), readFileSync(join(root, "..", "volume-1.img")))).toBe(0)

        // Idempotent: nothing more is imported, the same problems are reported.
        const again = yield* scan()
        expect(again.entries.filter((e) => e.outcome === "imported")).toEqual([])
        expect(again.entries.filter((e) => e.outcome === "invalid" || e.outcome === "orphan")).toHaveLength(10)
      }).pipe(Effect.provide(layerMemoryCatalog()))
    )
  )

  it.live("two scans at once into one catalog: each backup is imported by one of them, the other finds it existing", () =>
    withStore((root) =>
      Effect.gen(function* () {
        yield* damagedStore(root)
        const [first, second] = yield* Effect.all([scan(), scan()], { concurrency: 2 })
        const imported = (report: typeof first) => report.entries.filter((e) => e.outcome === "imported").map((e) => e.backupId)
        expect([...imported(first), ...imported(second)].sort()).toEqual(["a-full", "a-incr", "d-full", "g-full", "i-full"])
        for (const id of imported(first)) expect(byId(second.entries).get(id)?.outcome).toBe("existing")
        expect((yield* (yield* BackupCatalog).list()).map((r) => r.id).sort()).toEqual(["a-full", "a-incr", "d-full", "g-full", "i-full"])
      }).pipe(Effect.provide(layerMemoryCatalog()))
    )
  )

  it.live("a container named outside the root is refused, and a link out of the root is not followed", () =>
    withStore((root) =>
      Effect.gen(function* () {
        const outside = join(root, "..", "outside")
        mkdirSync(outside)
        writeFileSync(join(outside, "volume_v_20260101000000_backup_x_metadata"), "{}")
        symlinkSync(outside, join(root, "link"))
        const error = typedFailure(yield* Effect.exit(scan({ container: "../outside" })))
        expect(error).toMatchObject({ _tag: "InvalidObjectName", name: "../outside" })
        const linked = yield* Effect.exit(scan({ container: "link" }))
        expect(typedFailure(linked)).toMatchObject({ _tag: "StoreError" })
        const report = yield* scan()
        expect(report).toEqual({ containers: [], dryRun: false, entries: [] })
      }).pipe(Effect.provide(layerMemoryCatalog()))
    )
  )
})
