/**
 * `chunked-backup backup -` backs up standard input: with --size and
 * --volume-id, full and incremental; a wrong size exits 11 and claims
 * nothing; missing --size or --volume-id exit 3. `restore <id> -` writes
 * the volume to standard output, in order, through a pipe.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { BIN, cli } from "../support/cli.js"
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

/** `restore <id> -` through a real pipe (`| cat > file`): its exit code, stderr and the bytes that came through. */
const restoreThroughPipe = (args: ReadonlyArray<string>, env: Record<string, string>, out: string, reader = "cat") => {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ")
  const run = spawnSync("bash", ["-c", `set -o pipefail; ${quoted} | ${reader} > '${out}'`], { env: { ...process.env, ...env }, encoding: "utf8" })
  return { code: run.status, stderr: run.stderr, bytes: readFileSync(out) }
}

describe("restore to standard output", () => {
  it.live("a chain restores through a pipe byte for byte, messages on stderr only; --new with - exits 3", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const volume = patternedVolume(6 * 1024 * 1024 + 5, 4)
        const args = ["backup", "-", "--size", String(volume.length), "--volume-id", VOLUME, "--chunk-size", "1048576"]
        expect((yield* cli(args, env, volume)).code).toBe(0)
        volume.fill(3, 1_500_000, 3_700_000)
        const incremental = yield* cli([...args, "--incremental"], env, volume)
        expect(incremental.code, incremental.stderr).toBe(0)
        const id = incremental.stdout.trim()
        const out = join(dir, "piped.img")
        const piped = restoreThroughPipe(["restore", id, "-", "--concurrency", "3"], env, out)
        expect(piped.code, piped.stderr).toBe(0)
        expect(piped.bytes.equals(Buffer.from(volume))).toBe(true)
        expect(piped.stderr).toContain(`restored ${id} (2 backup(s), 6.0 MiB) to standard output, every block checked against its sha256`)
        // --json: the result is a JSON line on stderr; stdout is still only the volume.
        const json = restoreThroughPipe(["--json", "restore", id, "-"], env, out)
        expect(json.code, json.stderr).toBe(0)
        expect(json.bytes.equals(Buffer.from(volume))).toBe(true)
        const last = JSON.parse(json.stderr.trim().split("\n").at(-1)!) as { target: string; bytes: number }
        expect(last).toMatchObject({ target: "-", bytes: volume.length })
        // /dev/stdout by name is the same: in order, messages on stderr.
        const named = restoreThroughPipe(["restore", id, "/dev/stdout"], env, out)
        expect(named.code, named.stderr).toBe(0)
        expect(named.bytes.equals(Buffer.from(volume))).toBe(true)
        expect(named.stderr).toContain("to standard output")
        // A reader that goes away early: exit 11 naming the pipe, and the backup is available again.
        const early = restoreThroughPipe(["restore", id, "-"], env, out, "head -c 1000")
        expect(early.code).toBe(exitCodes.VolumeError)
        expect(early.stderr).toContain("volume standard output: the reader closed the pipe before the volume's end (EPIPE)")
        expect(early.bytes.length).toBe(1000)
        const shown = JSON.parse((yield* cli(["--json", "show", id], env)).stdout) as { status: string }
        expect(shown.status).toBe("available")
        const fresh = yield* cli(["restore", id, "-", "--new"], env)
        expect(fresh.code).toBe(exitCodes.InvalidRequest)
        expect(fresh.stderr).toContain("--new is for a file or device")
      })
    )
  )
})
