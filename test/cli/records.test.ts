/**
 * What the CLI says about records: an export counts the live incrementals
 * that depend on a backup, as Cinder's does, and an incremental on another
 * volume's backup is refused before any record is made.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
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
})
