/**
 * What the CLI says about records: an export counts the live incrementals
 * that depend on a backup, as Cinder's does, and an incremental on another
 * volume's backup is refused before any record is made.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { cli } from "../support/cli.js"
import { patternedVolume, withTempDir } from "../support/layers.js"

const exportedFields = (stdout: string) => {
  const { backup_url } = JSON.parse(stdout) as { backup_url: string }
  return JSON.parse(Buffer.from(backup_url, "base64").toString("utf8")) as Record<string, unknown>
}

describe("CLI records", () => {
  it.live("export-record counts live dependents; an incremental on another volume's backup exits 3 and leaves no record", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const volume = join(dir, "disk.img")
        const other = join(dir, "other.img")
        writeFileSync(volume, patternedVolume(256 * 1024))
        writeFileSync(other, patternedVolume(256 * 1024, 5))
        const full = (yield* cli(["backup", volume, "--chunk-size", "65536"], env)).stdout.trim()
        const before = yield* cli(["--json", "export-record", full], env)
        expect(exportedFields(before.stdout).num_dependent_backups).toBe(0)
        // The table fits 100 columns; the long backup_url wraps onto lines of its own.
        const table = (yield* cli(["export-record", full], env)).stdout.trimEnd().split("\n")
        for (const line of table) expect(line.length).toBeLessThanOrEqual(100)
        const urlLines = table.slice(table.findIndex((line) => line.startsWith("| backup_url")), -1)
        expect(urlLines.map((line) => line.split("|")[2]!.trim()).join("")).toBe((JSON.parse(before.stdout) as { backup_url: string }).backup_url)
        const one = yield* cli(["backup", volume, "--incremental", "--chunk-size", "65536"], env)
        expect(one.code, one.stderr).toBe(0)
        const two = yield* cli(["backup", volume, "--parent", full, "--chunk-size", "65536"], env)
        expect(two.code, two.stderr).toBe(0)
        expect(exportedFields((yield* cli(["--json", "export-record", full], env)).stdout).num_dependent_backups).toBe(2)
        expect((yield* cli(["delete", two.stdout.trim()], env)).code).toBe(0)
        expect(exportedFields((yield* cli(["--json", "export-record", full], env)).stdout).num_dependent_backups).toBe(1)

        const listed = (yield* cli(["--json", "list"], env)).stdout
        const refused = yield* cli(["backup", other, "--parent", full, "--chunk-size", "65536"], env)
        expect(refused.code, refused.stderr).toBe(exitCodes.InvalidRequest)
        expect(refused.stderr).toContain(`backup ${full} is of volume`)
        expect((yield* cli(["--json", "list"], env)).stdout).toBe(listed)
      })
    )
  )

  it.live("list: a header, no failed or deleted records unless --all or --status; ids by unique prefix; a larger target is warned about", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const volume = join(dir, "disk.img")
        writeFileSync(volume, patternedVolume(128 * 1024))
        const ids = ["aaaaaaaa-1111-4000-8000-000000000001", "aaaaaaaa-2222-4000-8000-000000000002", "bbbbbbbb-3333-4000-8000-000000000003"]
        for (const id of ids) expect((yield* cli(["backup", volume, "--backup-id", id, "--chunk-size", "65536", "--volume-id", id], env)).code).toBe(0)
        expect((yield* cli(["delete", ids[2]!], env)).code).toBe(0)
        const failed = yield* cli(["backup", volume, "--backup-id", "cccccccc-4444-4000-8000-000000000004", "--chunk-size", "1000", "--sha-block-size", "512"], env)
        expect(failed.code).toBe(exitCodes.InvalidRequest)

        const list = (yield* cli(["list"], env)).stdout.trimEnd().split("\n")
        expect(list[0]).toMatch(/^ID\s+STATUS\s+TYPE\s+SIZE\s+OBJECTS\s+CREATED \(UTC\)\s+NAME$/)
        expect(list.filter((line) => line.includes("available"))).toHaveLength(2)
        expect(list.join("\n")).not.toContain(ids[2])
        expect(list.at(-1)).toMatch(/not shown: --all/)
        expect((yield* cli(["list", "--all"], env)).stdout).toContain(ids[2])
        const deleted = JSON.parse((yield* cli(["--json", "list", "--status", "deleted"], env)).stdout) as Array<{ id: string }>
        expect(deleted.map((r) => r.id)).toEqual([ids[2]])

        const byPrefix = yield* cli(["--json", "show", "bbbbbbbb-33"], env)
        expect(JSON.parse(byPrefix.stdout)).toMatchObject({ id: ids[2] })
        const ambiguous = yield* cli(["show", "aaaaaaaa"], env)
        expect(ambiguous.code).toBe(exitCodes.InvalidRequest)
        expect(ambiguous.stderr).toContain(ids[0])
        expect(ambiguous.stderr).toContain(ids[1])
        const short = yield* cli(["show", "aaaa"], env)
        expect(short.code).toBe(exitCodes.InvalidRequest)
        expect(short.stderr).toContain("aaaa is too short to name a backup: give at least 8 characters of its id")
        expect((yield* cli(["show", "zzzz"], env)).code).toBe(exitCodes.BackupNotFound)

        const bigger = join(dir, "bigger.img")
        writeFileSync(bigger, Buffer.alloc(128 * 1024 + 512, 1))
        const restored = yield* cli(["restore", "aaaaaaaa-2222", bigger], env)
        expect(restored.code, restored.stderr).toBe(0)
        expect(restored.stderr).toContain("the 512 bytes past the volume's end (131072) were left as they were")
        expect(readFileSync(bigger).subarray(0, 128 * 1024).equals(Buffer.from(patternedVolume(128 * 1024)))).toBe(true)
      })
    )
  )

  it.live("read commands on a repository that does not exist exit 4 and create nothing", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "nowhere") }
        for (const args of [["list"], ["show", "x"], ["restore", "x", join(dir, "t.img")], ["verify", "x"], ["export-record", "x"]]) {
          const result = yield* cli(args, env)
          expect(result.code, `${args[0]}: ${result.stderr}`).toBe(exitCodes.BackupNotFound)
          expect(result.stderr).toContain("no repository here")
        }
        expect(existsSync(join(dir, "nowhere"))).toBe(false)
        expect(existsSync(join(dir, "t.img"))).toBe(false)
      })
    )
  )

  it.live("backup, restore and verify end with a summary: a line on stderr, `summary` fields with --json", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const volume = join(dir, "disk.img")
        const data = Buffer.alloc(1024 * 1024) // compressible: a run of zeros after a little pattern
        Buffer.from(patternedVolume(64 * 1024)).copy(data)
        writeFileSync(volume, data)
        const full = yield* cli(["backup", volume, "--chunk-size", "262144"], env)
        expect(full.stderr).toMatch(/backup: read 1\.0 MiB, changed 1\.0 MiB, stored [\d.]+ KiB \(after compression\) in 4 objects, [\d.]+ s/)
        data.fill(7, 300_000, 300_100)
        writeFileSync(volume, data)
        const incr = yield* cli(["--json", "backup", volume, "--incremental", "--chunk-size", "262144"], env)
        const summary = (JSON.parse(incr.stdout) as { summary: Record<string, number> }).summary
        expect(summary).toMatchObject({ bytes: data.length, objects: 1, bytesChanged: 32768 })
        expect(summary.bytesStored).toBeGreaterThan(0)
        expect(summary.bytesStored).toBeLessThan(32768)
        const restored = yield* cli(["restore", full.stdout.trim(), join(dir, "r.img")], env)
        expect(restored.stderr).toMatch(/restore: restored 1\.0 MiB, 4 objects, [\d.]+ s/)
        const verified = yield* cli(["--json", "verify", full.stdout.trim()], env)
        expect((JSON.parse(verified.stdout) as { summary: Record<string, number> }).summary).toMatchObject({ bytes: data.length, objects: 4 })
      })
    )
  )
})
