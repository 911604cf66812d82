/**
 * Lost catalog through Swift: Cinder's real SwiftBackupDriver (the oracle)
 * writes two chains (full zlib + incremental bz2, full zstd + incremental
 * none) into one container of the loopback Swift; an empty catalog and
 * `scan` through the Swift layer find all four, as Cinder recorded them,
 * and each restores bit-exact. The same container scanned through the S3
 * API (Swift's s3api) finds them too. Skipped only when the
 * SWIFT_LOOPBACK_* variables are absent.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BackupCatalog, restore, scan } from "../../src/index.js"
import { patternedVolume } from "../support/layers.js"
import { loopback, runSwiftOracle, s3Store, servicesOn, SKIP_REASON, swiftStore, uniqueContainer } from "../support/swift.js"

const KiB = 1024
const SIZE = 1024 * KiB + 1000
const CHAINS = [
  ["zlib", "bz2"],
  ["zstd", "none"]
] as const

describe.skipIf(loopback === undefined)(`scan of a Swift container Cinder wrote${loopback === undefined ? ` (${SKIP_REASON})` : ""}`, () => {
  const sw = loopback ?? ({} as NonNullable<typeof loopback>)
  const container = uniqueContainer("scan")
  let dir = ""
  const volumes: Array<{ base: string; edited: string }> = []
  const written: Array<Record<string, unknown>> = []

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cb-scan-swift-"))
    const common = { swift: { auth_url: sw.authUrl, user: sw.user, key: sw.key }, container, chunk_size: 256 * KiB, sha_block_size: 32 * KiB, volume_size_gib: 1 }
    await Promise.all(
      CHAINS.map(async ([fullCompression, incrCompression], i) => {
        const base = join(dir, `base-${i}.img`)
        const edited = join(dir, `edited-${i}.img`)
        const bytes = patternedVolume(SIZE, 21 + i)
        writeFileSync(base, bytes)
        bytes.fill(3, 250 * KiB, 300 * KiB) // across the chunk boundary
        bytes[SIZE - 1] = bytes[SIZE - 1]! ^ 0xff
        writeFileSync(edited, bytes)
        volumes[i] = { base, edited }
        const volumeId = randomUUID()
        const record = (parent: string | null, createdAt: string) => ({
          id: randomUUID(),
          volume_id: volumeId,
          parent_id: parent,
          container: null,
          service_metadata: null,
          display_name: `scan ${i}`,
          display_description: parent === null ? "full" : null,
          created_at: createdAt,
          size: 1,
          availability_zone: "nova"
        })
        const full = await runSwiftOracle({ ...common, op: "backup", compression: fullCompression, timestamp: "20261126040446", volume_path: base, backup: record(null, "2026-11-26T04:04:46Z") })
        const incr = await runSwiftOracle({
          ...common,
          op: "backup",
          compression: incrCompression,
          timestamp: "20261126050607",
          volume_path: edited,
          backup: record(String(full.id), "2026-11-26T05:06:07Z"),
          backups: [{ ...full, status: "available" }]
        })
        written[2 * i] = full
        written[2 * i + 1] = incr
      })
    )
  }, 180_000)
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const volumeOf = (index: number) => (index % 2 === 0 ? volumes[index / 2]!.base : volumes[(index - 1) / 2]!.edited)

  it.live("an empty catalog gets all of Cinder's backups back through Swift, and each restores bit-exact", () =>
    Effect.gen(function* () {
      const report = yield* scan()
      expect(report.containers).toEqual([container])
      expect(report.entries.map((e) => e.outcome)).toEqual(["imported", "imported", "imported", "imported"])
      const catalog = yield* BackupCatalog
      for (const [index, cinder] of written.entries()) {
        const record = yield* catalog.get(String(cinder.id))
        expect(record).toMatchObject({
          volume_id: cinder.volume_id,
          parent_id: cinder.parent_id,
          container,
          service_metadata: cinder.service_metadata,
          status: "available",
          size: 1,
          volume_size_bytes: SIZE,
          object_count: cinder.object_count,
          display_name: cinder.display_name,
          display_description: cinder.display_description,
          availability_zone: "nova",
          service: "cinder.backup.drivers.swift.SwiftBackupDriver"
        })
        expect(record.created_at.toISOString()).toBe(new Date(String(cinder.created_at)).toISOString())
        const target = join(dir, `restored-${index}.img`)
        yield* restore(record.id, target, { volumeIsNew: true })
        expect(Buffer.compare(readFileSync(target), readFileSync(volumeOf(index)))).toBe(0)
      }
      expect((yield* scan()).entries.map((e) => e.outcome)).toEqual(["existing", "existing", "existing", "existing"])
    }).pipe(Effect.provide(servicesOn(swiftStore(sw, { container })))), 120_000)

  it.live("the same container through the S3 API: every backup found, an incremental restores bit-exact", () =>
    Effect.gen(function* () {
      const report = yield* scan({ container })
      expect(report.entries.map((e) => e.outcome)).toEqual(["imported", "imported", "imported", "imported"])
      const target = join(dir, "restored-s3.img")
      yield* restore(String(written[3]!.id), target, { volumeIsNew: true })
      expect(Buffer.compare(readFileSync(target), readFileSync(volumeOf(3)))).toBe(0)
    }).pipe(Effect.provide(servicesOn(s3Store(sw, { bucket: container })))), 120_000)
})
