/**
 * Interoperability with OpenStack Cinder's real SwiftBackupDriver (Debian's
 * python3-cinder, driven by test/oracle/cinder_swift.py) through the same
 * loopback Swift, auth v1 / tempauth on both sides:
 *
 *   1. Cinder -> us: Cinder backs up a volume (full, zlib) and an edited
 *      copy (incremental, bz2); we restore both with the Swift layer.
 *   2. us -> Cinder: we back up the same pair (full zstd, incremental none)
 *      with the Swift layer; Cinder restores the incremental and the full.
 *
 * 3 MiB + 1000 bytes, 1 MiB objects, 32 KiB sha blocks. Skipped only when
 * the SWIFT_LOOPBACK_* variables are absent.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { backup, BackupCatalog, newBackupRecord, restore, type BackupRecord } from "../../src/index.js"
import { loopback, runSwiftOracle, servicesOn, SKIP_REASON, swiftStore, uniqueContainer } from "../support/swift.js"

const MiB = 1024 * 1024
const CHUNK = MiB
const SHA_BLOCK = 32 * 1024
const SIZE = 3 * MiB + 1000

const fillRandom = (bytes: Uint8Array, start: number, end: number, seed: number) => {
  let x = seed * 2654435761 + 1
  for (let i = start; i < end; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    bytes[i] = x >>> 24
  }
}
const BASE = (() => {
  const v = new Uint8Array(SIZE)
  fillRandom(v, 0, 400_000, 1) // then zeros: compressible
  v.fill(0x61, 1_200_000, 1_500_000)
  fillRandom(v, 1_500_000, SIZE, 2)
  return v
})()
const EDITED = (() => {
  const v = BASE.slice()
  fillRandom(v, 100, 5000, 3)
  v.fill(0, 40 * SHA_BLOCK, 42 * SHA_BLOCK)
  fillRandom(v, 2 * MiB - 30_000, 2 * MiB + 40_000, 4) // across a chunk boundary
  v[SIZE - 1] = v[SIZE - 1]! ^ 0xff
  return v
})()

/** A Cinder record (as the oracle returns it) in our catalog, like `backup-import`. */
const imported = (out: Record<string, unknown>): BackupRecord =>
  newBackupRecord({
    id: String(out.id),
    volume_id: String(out.volume_id),
    volume_size_bytes: SIZE,
    parent_id: (out.parent_id as string | null) ?? null,
    container: String(out.container),
    service_metadata: String(out.service_metadata),
    status: "available",
    object_count: Number(out.object_count),
    created_at: new Date(String(out.created_at)),
    availability_zone: (out.availability_zone as string | null) ?? null,
    service: String(out.service)
  })

/** Our record as the oracle's DB row. */
const asRow = (record: BackupRecord, status: string) => ({
  id: record.id,
  volume_id: record.volume_id,
  parent_id: record.parent_id,
  container: record.container,
  service_metadata: record.service_metadata,
  display_name: record.display_name,
  display_description: record.display_description,
  created_at: record.created_at.toISOString(),
  size: record.size,
  status,
  availability_zone: record.availability_zone,
  object_count: record.object_count,
  service: record.service
})

describe.skipIf(loopback === undefined)(`Cinder's SwiftBackupDriver and this project, through one Swift${loopback === undefined ? ` (${SKIP_REASON})` : ""}`, () => {
  // A skipped describe still runs its body when collecting: no dereference of a missing Swift here.
  const sw = loopback ?? ({} as NonNullable<typeof loopback>)
  const container = uniqueContainer("cinder")
  const swift = { auth_url: sw.authUrl, user: sw.user, key: sw.key }
  let dir = ""
  const path = (name: string) => join(dir, name)

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "cb-cinder-swift-"))
    writeFileSync(path("base.img"), BASE)
    writeFileSync(path("edited.img"), EDITED)
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  const common = { swift, container, chunk_size: CHUNK, sha_block_size: SHA_BLOCK, volume_size_gib: 1 }
  const services = () => servicesOn(swiftStore(sw, { container }))

  it.live("Cinder backs up (full + incremental); this project restores both", () =>
    Effect.gen(function* () {
      const volumeId = randomUUID()
      const record = (id: string, parent: string | null, createdAt: string) => ({
        id,
        volume_id: volumeId,
        parent_id: parent,
        container: null,
        service_metadata: null,
        display_name: "from cinder",
        display_description: null,
        created_at: createdAt,
        size: 1,
        availability_zone: "nova"
      })
      const fullId = randomUUID()
      const full = yield* Effect.promise(() =>
        runSwiftOracle({
          ...common,
          op: "backup",
          compression: "zlib",
          timestamp: "20261126040446",
          volume_path: path("base.img"),
          backup: record(fullId, null, "2026-11-26T04:04:46Z")
        })
      )
      const incr = yield* Effect.promise(() =>
        runSwiftOracle({
          ...common,
          op: "backup",
          compression: "bz2",
          timestamp: "20261126050607",
          volume_path: path("edited.img"),
          backup: record(randomUUID(), fullId, "2026-11-26T05:06:07Z"),
          backups: [{ ...full, status: "available" }]
        })
      )
      expect(full.service).toBe("cinder.backup.drivers.swift.SwiftBackupDriver")
      expect(String(incr.service_metadata)).toMatch(new RegExp(`^volume_${volumeId}/20261126050607/az_nova_backup_`))

      yield* Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        yield* catalog.create(imported(full))
        yield* catalog.create(imported(incr))
        yield* restore(String(incr.id), path("ours-from-cinder-incr.img"))
        yield* restore(String(full.id), path("ours-from-cinder-full.img"))
      }).pipe(Effect.provide(services()))
      expect(Buffer.from(readFileSync(path("ours-from-cinder-incr.img"))).equals(Buffer.from(EDITED))).toBe(true)
      expect(Buffer.from(readFileSync(path("ours-from-cinder-full.img"))).equals(Buffer.from(BASE))).toBe(true)
    })
  )

  it.live("this project backs up (full + incremental); Cinder restores both", () =>
    Effect.gen(function* () {
      const volumeId = randomUUID()
      const { full, incr } = yield* Effect.gen(function* () {
        const options = { chunkSize: CHUNK, shaBlockSize: SHA_BLOCK }
        const full = yield* backup({ id: randomUUID(), volume_id: volumeId, availability_zone: "nova" }, path("base.img"), {
          ...options,
          compression: "zstd"
        })
        const incr = yield* backup(
          { id: randomUUID(), volume_id: volumeId, parent_id: full.id, availability_zone: "nova" },
          path("edited.img"),
          { ...options, compression: "none" }
        )
        return { full, incr }
      }).pipe(Effect.provide(services()))
      expect(incr.service).toBe("cinder.backup.drivers.swift.SwiftBackupDriver")

      for (const [target, record, parents] of [
        ["cinder-from-ours-incr.img", incr, [asRow(full, "available")]],
        ["cinder-from-ours-full.img", full, []]
      ] as const) {
        writeFileSync(path(target), new Uint8Array(SIZE).fill(0xee)) // Cinder opens the target r+b
        const answer = yield* Effect.promise(() =>
          runSwiftOracle({ ...common, op: "restore", volume_path: path(target), backup: asRow(record, "restoring"), backups: parents })
        )
        expect(answer.restored).toBe(true)
      }
      expect(Buffer.from(readFileSync(path("cinder-from-ours-incr.img"))).equals(Buffer.from(EDITED))).toBe(true)
      expect(Buffer.from(readFileSync(path("cinder-from-ours-full.img"))).equals(Buffer.from(BASE))).toBe(true)
    })
  )
})
