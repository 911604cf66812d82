/**
 * Lost catalog, Cinder's side: Cinder's real PosixBackupDriver (the oracle)
 * writes a full and an incremental backup of one volume per compression
 * into one posix root; an empty catalog and `scan` then find all of them,
 * with the records Cinder had, and each restores bit-exact. A second scan
 * imports nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BackupCatalog, layerMemoryCatalog, layerPosix, restore, scan } from "../../src/index.js"
import { runOracle, type OracleBackupResult } from "../support/cinderOracle.js"
import { localServices, patternedVolume } from "../support/layers.js"

const KiB = 1024
const SIZE = 1536 * KiB + 1000 // not a multiple of the sha block: the last block is short
const COMPRESSIONS = ["none", "zlib", "gzip", "bz2", "zstd"] as const

let dir = ""
const root = () => join(dir, "store")
const base = (i: number) => join(dir, `base-${i}.img`)
const edited = (i: number) => join(dir, `edited-${i}.img`)
const idOf = (i: number, kind: 1 | 2) => `${kind}${i}c0ffee-5ca0-4e1d-8a5e-0000000000${kind}${i}`
const volumeOf = (i: number) => `7010${i}e00-0000-4000-8000-00000000000${i}`

const editedBytes = (bytes: Uint8Array) => {
  const copy = Uint8Array.from(bytes)
  copy.fill(7, 100_000, 140_000) // a run across sha blocks
  copy.fill(0, 600 * KiB, 700 * KiB) // a run crossing the 512 KiB chunk boundary
  copy[SIZE - 1] = copy[SIZE - 1]! ^ 0xff // the short last block
  return copy
}

const chains: Array<{ full: OracleBackupResult; incr: OracleBackupResult }> = []

const record = (i: number, kind: 1 | 2, parent: OracleBackupResult | null) => ({
  id: idOf(i, kind),
  volume_id: volumeOf(i),
  parent_id: parent?.id ?? null,
  container: null,
  service_metadata: null,
  display_name: `scan ${COMPRESSIONS[i]} ${kind === 1 ? "full" : "incr"}`,
  display_description: kind === 1 ? "from Cinder" : null,
  created_at: kind === 1 ? "2026-11-26T04:04:46.123456+00:00" : "2026-11-27T05:06:07+00:00",
  size: 1,
  status: "creating"
})

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "cb-scan-cinder-"))
  await Promise.all(
    COMPRESSIONS.map(async (compression, i) => {
      const bytes = patternedVolume(SIZE, 11 + i)
      writeFileSync(base(i), bytes)
      writeFileSync(edited(i), editedBytes(bytes))
      const common = { op: "backup" as const, backup_path: root(), compression, chunk_size: 512 * KiB, sha_block_size: 32 * KiB, volume_size_gib: 1 }
      const full = (await runOracle({ ...common, volume_path: base(i), timestamp: "20261126040446", backup: record(i, 1, null) })) as OracleBackupResult
      const incr = (await runOracle({
        ...common,
        volume_path: edited(i),
        timestamp: "20261127050607",
        backup: record(i, 2, full),
        backups: [{ ...record(i, 1, null), container: full.container, service_metadata: full.service_metadata, status: "available", object_count: full.object_count }]
      })) as OracleBackupResult
      chains[i] = { full, incr }
    })
  )
}, 180_000)

afterAll(() => rmSync(dir, { recursive: true, force: true }))

const services = () => Layer.mergeAll(layerPosix({ root: root() }), layerMemoryCatalog()).pipe(Layer.provideMerge(localServices))

describe("scan of a store Cinder wrote (posix)", () => {
  it.live("an empty catalog gets every backup back, as Cinder recorded it, and each restores bit-exact", () =>
    Effect.gen(function* () {
      const report = yield* scan()
      expect(report.entries.filter((e) => e.outcome !== "imported")).toEqual([])
      expect(report.entries).toHaveLength(2 * COMPRESSIONS.length)
      const catalog = yield* BackupCatalog
      for (const [i, { full, incr }] of chains.entries()) {
        for (const [cinder, volume] of [[full, base(i)], [incr, edited(i)]] as const) {
          const rebuilt = yield* catalog.get(cinder.id)
          expect(rebuilt).toMatchObject({
            id: cinder.id,
            volume_id: cinder.volume_id,
            parent_id: cinder.parent_id,
            container: cinder.container,
            service_metadata: cinder.service_metadata,
            status: "available",
            size: cinder.size,
            volume_size_bytes: SIZE,
            object_count: cinder.object_count,
            display_name: cinder.display_name,
            display_description: cinder.display_description,
            service: "cinder.backup.drivers.posix.PosixBackupDriver"
          })
          expect(rebuilt.created_at.toISOString()).toBe(new Date(cinder.created_at).toISOString())
          const target = join(dir, `restored-${cinder.id}.img`)
          yield* restore(cinder.id, target, { volumeIsNew: true })
          expect(Buffer.compare(readFileSync(target), readFileSync(volume))).toBe(0)
        }
      }
      // Idempotent: a second scan finds every backup in the catalog and imports nothing.
      const again = yield* scan()
      expect(again.entries.map((e) => e.outcome)).toEqual(Array(2 * COMPRESSIONS.length).fill("existing"))
    }).pipe(Effect.provide(services())), 120_000)

  it.live("a dry run reports what it would import and writes nothing", () =>
    Effect.gen(function* () {
      const report = yield* scan({ dryRun: true })
      expect(report.dryRun).toBe(true)
      expect(report.entries.filter((e) => e.outcome === "imported")).toHaveLength(2 * COMPRESSIONS.length)
      expect(yield* (yield* BackupCatalog).list()).toEqual([])
    }).pipe(Effect.provide(services())))
})
