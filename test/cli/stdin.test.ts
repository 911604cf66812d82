/**
 * `chunked-backup backup -` backs up standard input: with --size and
 * --volume-id, full and incremental; a wrong size exits 11 and claims
 * nothing; missing --size or --volume-id exit 3.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { cli } from "../support/cli.js"
import { patternedVolume, withTempDir } from "../support/layers.js"

const VOLUME = "5d1c3a2e-0b5f-4f6e-9d3c-2a1b0c9d8e7f"

describe("backup of standard input", () => {
  it.live("a full and an incremental backup piped in restore byte for byte; a wrong size exits 11 and claims nothing", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const first = patternedVolume(3 * 1024 * 1024 + 11, 2)
        const args = (size: number) => ["backup", "-", "--size", String(size), "--volume-id", VOLUME, "--chunk-size", "1048576"]
        const full = yield* cli(args(first.length), env, first)
        expect(full.code, full.stderr).toBe(0)
        const second = Uint8Array.from(first)
        second.fill(1, 2_000_000, 2_000_100)
        const incremental = yield* cli([...args(second.length), "--incremental"], env, second)
        expect(incremental.code, incremental.stderr).toBe(0)
        const id = incremental.stdout.trim()
        const shown = JSON.parse((yield* cli(["--json", "show", id], env)).stdout) as { parent_id: string; volume_size_bytes: number }
        expect(shown).toMatchObject({ parent_id: full.stdout.trim(), volume_size_bytes: second.length })
        const target = join(dir, "out.img")
        expect((yield* cli(["restore", id, target], env)).code).toBe(0)
        expect(readFileSync(target).equals(Buffer.from(second))).toBe(true)

        const short = yield* cli(args(second.length + 1), env, second)
        expect(short.code).toBe(exitCodes.VolumeError)
        expect(short.stderr).toContain(`volume standard input: ended after ${second.length} bytes, before the ${second.length + 1} bytes declared`)
        const long = yield* cli(args(second.length - 1), env, second)
        expect(long.code).toBe(exitCodes.VolumeError)
        expect(long.stderr).toContain(`has more than the ${second.length - 1} bytes declared`)
        const listed = JSON.parse((yield* cli(["--json", "list"], env)).stdout) as ReadonlyArray<unknown>
        expect(listed).toHaveLength(2)
      })
    )
  )

  it.live("- needs --size and --volume-id; --size is for - only", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const bytes = new Uint8Array(4096)
        const noSize = yield* cli(["backup", "-", "--volume-id", VOLUME], env, bytes)
        expect(noSize.code).toBe(exitCodes.InvalidRequest)
        expect(noSize.stderr).toContain("needs --size")
        const noId = yield* cli(["backup", "-", "--size", "4096"], env, bytes)
        expect(noId.code).toBe(exitCodes.InvalidRequest)
        expect(noId.stderr).toContain("needs --volume-id")
        const sized = yield* cli(["backup", join(dir, "x.img"), "--size", "4096"], env)
        expect(sized.code).toBe(exitCodes.InvalidRequest)
        expect(sized.stderr).toContain("--size is for a backup of standard input")
      })
    )
  )
})
