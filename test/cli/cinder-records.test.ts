/**
 * Records between this CLI and the real Cinder (Debian's python3-cinder):
 * exported here and imported there, and the other way round.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync, truncateSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { cli } from "../support/cli.js"
import { runOracle, type OracleBackupResult, type OracleRecord } from "../support/cinderOracle.js"
import { withTempDir } from "../support/layers.js"
import { sameAsTextThenZeros, textVolume } from "../support/textVolume.js"

const json = (text: string) => JSON.parse(text) as Record<string, unknown>

describe("CLI record export/import with the real Cinder", () => {
  it.live("a record exported here imports into Cinder, and Cinder restores the backup from it", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const volume = join(dir, "disk.img")
        const data = textVolume(2 * 1024 * 1024 + 77)
        writeFileSync(volume, data)
        const volumeId = "9b2f3c1e-4d5a-4b6c-8d7e-0f1a2b3c4d5e"
        const made = yield* cli(["backup", volume, "--volume-id", volumeId, "--chunk-size", "1048576", "--name", "é export"], env)
        expect(made.code, made.stderr).toBe(0)
        const id = made.stdout.trim()
        const table = yield* cli(["export-record", id], env)
        expect(table.stdout).toMatch(/^\+-+\+-+\+\n\| Property +\| Value +\|\n/)
        expect(table.stdout).toMatch(/\| backup_service \| cinder\.backup\.drivers\.posix\.PosixBackupDriver +\|/)
        const exported = json((yield* cli(["export-record", id, "--json"], env)).stdout) as { backup_service: string; backup_url: string }
        const decoded = (yield* Effect.promise(() =>
          runOracle({ op: "import", backup_path: join(dir, "repo", "store"), record: exported })
        )) as Record<string, unknown>
        expect(decoded).toMatchObject({ id, volume_id: volumeId, status: "available", display_name: "é export", object_count: 3, size: 1 })
        // Cinder restores from what it imported.
        const target = join(dir, "cinder-restored.img")
        writeFileSync(target, Buffer.alloc(data.length))
        yield* Effect.promise(() =>
          runOracle({
            op: "restore",
            backup_path: join(dir, "repo", "store"),
            volume_path: target,
            backup: { ...(decoded as unknown as OracleRecord), status: "restoring" }
          })
        )
        expect(readFileSync(target).equals(data)).toBe(true)
      })
    )
  )

  it.live("a record exported by Cinder imports here, after which restore works", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const storeRoot = join(dir, "repo", "store")
        const volume = join(dir, "disk.img")
        // A Cinder volume is whole GiB, and its record gives only the GiB: text, then zeros
        // (a sparse file: nothing to write, and Cinder reads the holes as zeros). Cinder's bzip2
        // backups are restored in test/golden; zlib in larger chunks keeps Cinder's pass short here.
        const text = textVolume(1024 * 1024 * 2 + 5)
        writeFileSync(volume, text)
        truncateSync(volume, 1024 ** 3)
        const record: OracleRecord = {
          id: "3c0ffee0-1234-4abc-9def-00000000c1d2",
          volume_id: "9b2f3c1e-4d5a-4b6c-8d7e-0f1a2b3c4d5e",
          parent_id: null,
          container: null,
          service_metadata: null,
          display_name: "from cinder",
          display_description: null,
          created_at: "2026-11-26T04:04:46+00:00",
          size: 1,
          availability_zone: "nova"
        }
        const backedUp = yield* Effect.promise(() =>
          runOracle({ op: "backup", backup_path: storeRoot, backup: record, volume_path: volume, compression: "zlib", chunk_size: 8 * 1048576, sha_block_size: 32768 })
        )
        const exported = (yield* Effect.promise(() =>
          runOracle({ op: "export", backup_path: storeRoot, backup: { ...record, ...pick(backedUp), status: "available" } })
        )) as { backup_service: string; backup_url: string }
        const missingStore = yield* cli(["--store", `posix:${join(dir, "elsewhere")}`, "import-record", exported.backup_service, exported.backup_url], env)
        expect(missingStore.code).toBe(exitCodes.ContainerNotFound)
        const imported = yield* cli(["import-record", exported.backup_service, exported.backup_url], env)
        expect(imported.code, imported.stderr).toBe(0)
        const target = join(dir, "restored.img")
        const restored = yield* cli(["restore", record.id, target], env)
        expect(restored.code, restored.stderr).toBe(0)
        expect(sameAsTextThenZeros(target, text, 1024 ** 3)).toBe(true)
        const again = yield* cli(["import-record", exported.backup_service, exported.backup_url], env)
        expect(again.code).toBe(exitCodes.InvalidRequest)
        expect(again.stderr).toContain("is already in the catalog")
        const garbage = yield* cli(["import-record", exported.backup_service, "bm90IGpzb24="], env)
        expect(garbage.code).toBe(exitCodes.InvalidRequest)
      })
    ),
    // Cinder's own pass over the 1 GiB volume takes ~8 s alone, longer beside the heavier files.
    { timeout: 180_000 }
  )
})

const pick = (r: OracleBackupResult) => ({
  container: r.container,
  service_metadata: r.service_metadata,
  object_count: r.object_count,
  service: r.service
})
