/**
 * `chunked-backup scan` from the command line: a repository whose catalog
 * was deleted gets its records back; `--dry-run` writes nothing (not even
 * a catalog file); a broken backup is reported, left out, and the command
 * exits 17 (ScanFoundProblems) after importing the rest.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { backup, layerMemoryCatalog, layerPosix } from "../../src/index.js"
import { exitCodes } from "../../src/cli/errors.js"
import { cli } from "../support/cli.js"
import { localServices, patternedVolume, withTempDir } from "../support/layers.js"

/** The path of a backup's `_metadata` file in the repository's posix store. */
const metadataFile = (repo: string, id: string) => {
  const container = join(repo, "store", id.slice(0, 2), id.slice(2, 4), id)
  return join(container, readdirSync(container).find((name) => name.endsWith("_metadata"))!)
}

describe("CLI scan", () => {
  it.live("rebuilds a deleted catalog; --dry-run writes nothing; a broken backup exits 17 and the rest are imported", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const repo = join(dir, "repo")
        const env = { CHUNKED_BACKUP_REPO: repo }
        const volume = join(dir, "disk.img")
        writeFileSync(volume, patternedVolume(200 * 1024 + 17))
        const full = (yield* cli(["backup", volume, "--chunk-size", "65536", "--name", "nightly"], env)).stdout.trim()
        writeFileSync(volume, patternedVolume(200 * 1024 + 17, 2))
        const incr = (yield* cli(["backup", volume, "--incremental", "--chunk-size", "65536"], env)).stdout.trim()
        const other = join(dir, "other.img")
        writeFileSync(other, patternedVolume(100 * 1024, 3))
        const broken = (yield* cli(["backup", other, "--chunk-size", "65536"], env)).stdout.trim()
        const listed = (yield* cli(["--json", "list"], env)).stdout
        rmSync(join(repo, "catalog.sqlite"))

        const dry = yield* cli(["scan", "--dry-run", "--json"], env)
        expect(dry.code, dry.stderr).toBe(0)
        const report = JSON.parse(dry.stdout) as { dryRun: boolean; entries: Array<{ backupId: string; outcome: string }> }
        expect(report.dryRun).toBe(true)
        expect(report.entries.map((e) => [e.backupId, e.outcome]).sort()).toEqual([[broken, "imported"], [full, "imported"], [incr, "imported"]].sort())
        expect(existsSync(join(repo, "catalog.sqlite"))).toBe(false)

        writeFileSync(metadataFile(repo, broken), "not json")
        const scanned = yield* cli(["scan"], env)
        expect(scanned.code).toBe(exitCodes.ScanFoundProblems)
        expect(scanned.stdout).toContain(`invalid: ${broken}`)
        expect(scanned.stdout).toMatch(/imported 2, already in the catalog 0, broken 1, orphaned 0/)
        expect(scanned.stderr).toMatch(new RegExp(`scan left 1 backup\\(s\\) out: backup ${broken} is invalid .*metadata is not valid UTF-8 JSON`))
        const rebuilt = JSON.parse((yield* cli(["--json", "list"], env)).stdout) as Array<Record<string, unknown>>
        // Neither the update time nor (in a posix prefix) the availability zone is in the store.
        const strip = (records: Array<Record<string, unknown>>) => records.map(({ updated_at: _, availability_zone: __, ...r }) => r)
        expect(strip(rebuilt)).toEqual(strip((JSON.parse(listed) as Array<Record<string, unknown>>).filter((r) => r.id !== broken)))
        const restored = yield* cli(["restore", incr, join(dir, "restored.img"), "--new"], env)
        expect(restored.code, restored.stderr).toBe(0)

        const again = yield* cli(["--json", "scan"], env)
        expect(again.code).toBe(exitCodes.ScanFoundProblems)
        expect((JSON.parse(again.stdout) as { entries: Array<{ outcome: string }> }).entries.map((e) => e.outcome).sort()).toEqual(["existing", "existing", "invalid"])
      })
    )
  )

  it.live("a large store: progress on stderr every 100 backups checked, and at the end", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const repo = join(dir, "repo")
        const volume = join(dir, "small.img")
        writeFileSync(volume, patternedVolume(4096))
        yield* Effect.forEach(
          Array.from({ length: 120 }, (_, i) => i),
          (i) => backup({ id: `b${String(i).padStart(3, "0")}`, volume_id: `v${i}` }, volume, { chunkSize: 4096, shaBlockSize: 1024, compression: "none" }),
          { concurrency: 4, discard: true }
        ).pipe(Effect.provide(Layer.mergeAll(layerPosix({ root: join(repo, "store") }), layerMemoryCatalog()).pipe(Layer.provideMerge(localServices))))
        const scanned = yield* cli(["scan"], { CHUNKED_BACKUP_REPO: repo })
        expect(scanned.code, scanned.stderr).toBe(0)
        expect(scanned.stderr.trim().split("\n")).toEqual(["scan: 100 of 120 backups checked", "scan: 120 of 120 backups checked"])
        expect(scanned.stdout).toMatch(/imported 120, already in the catalog 0, broken 0, orphaned 0 \(120 container\(s\) scanned\)/)
      })
    )
  )
})
