/**
 * End to end: the real bin/chunked-backup in child processes, on the
 * embedded default (posix store + SQLite catalog in a temp repo). The
 * cancels are timed, so this file is in vitest's "timed" project.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { cli, startCli } from "../support/cli.js"
import { withTempDir } from "../support/layers.js"
import { objectsIn, textVolume } from "../support/textVolume.js"

const json = (text: string) => JSON.parse(text) as Record<string, unknown>

describe("CLI end to end", () => {
  it.live("backup, incremental, restore, compare; list, show, delete", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const volume = join(dir, "disk.img")
        const data = textVolume(3 * 1024 * 1024 + 123)
        writeFileSync(volume, data)
        const full = yield* cli(["backup", volume, "--chunk-size", "1048576", "--name", "first"], env)
        expect(full.code, full.stderr).toBe(0)
        const fullId = full.stdout.trim()
        expect(fullId).toMatch(/^[0-9a-f-]{36}$/)
        data.fill(0x41, 2_000_000, 2_200_000)
        writeFileSync(volume, data)
        // Global options may come after the subcommand.
        const incr = yield* cli(["backup", volume, "--incremental", "--chunk-size", "1048576", "--json", "--compression", "zstd"], env)
        expect(incr.code, incr.stderr).toBe(0)
        const record = json(incr.stdout)
        expect(record).toMatchObject({ parent_id: fullId, status: "available", object_count: 2 })
        // Without a terminal, progress is JSON lines on stderr.
        const events = incr.stderr.trim().split("\n").map(json)
        expect(events.at(-1)).toMatchObject({ type: "progress", percent: 100, done: true })

        const target = join(dir, "restored.img")
        const restored = yield* cli(["restore", String(record.id), target, "--new"], env)
        expect(restored.code, restored.stderr).toBe(0)
        expect(readFileSync(target).equals(data)).toBe(true)

        const list = yield* cli(["--json", "list"], env)
        expect((JSON.parse(list.stdout) as Array<{ id: string }>).map((r) => r.id)).toEqual([fullId, record.id])
        const show = yield* cli(["show", fullId], env)
        expect(show.stdout).toContain("first")

        const refused = yield* cli(["delete", fullId], env)
        expect(refused.code).toBe(exitCodes.InvalidRequest)
        expect(refused.stderr).toContain("dependent incremental backups")
        expect((yield* cli(["delete", String(record.id)], env)).code).toBe(0)
        expect((yield* cli(["delete", fullId], env)).code).toBe(0)
        expect(objectsIn(join(dir, "repo", "store"))).toEqual([])
      })
    )
  )

  it.live("cancel from a second process stops a running backup within a second and removes its objects", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const volume = join(dir, "big.img")
        writeFileSync(volume, textVolume(96 * 1024 * 1024))
        const id = "0c7e2a4b-1111-4222-8333-944455556666"
        const running = startCli(["backup", volume, "--backup-id", id, "--compression", "bz2", "--chunk-size", "1048576", "--concurrency", "1"], env)
        // Wait until it has written something.
        yield* Effect.promise(async () => {
          for (let i = 0; i < 200; i++) {
            await new Promise((r) => setTimeout(r, 50))
            const store = join(dir, "repo", "store")
            try {
              if (objectsIn(store).length >= 2) return
            } catch {
              // the store appears with the first object
            }
          }
        })
        const cancel = yield* cli(["cancel", id], env)
        expect(cancel.code, cancel.stderr).toBe(0)
        // From the status change (committed when `cancel` exits) to the backup's exit.
        const cancelledAt = Date.now()
        const result = yield* Effect.promise(() => running.result)
        expect(Date.now() - cancelledAt).toBeLessThan(1000)
        expect(result.code).toBe(exitCodes.BackupCancelled)
        expect(result.stderr).toContain(`backup ${id} was cancelled`)
        expect(objectsIn(join(dir, "repo", "store"))).toEqual([])
        const show = json((yield* cli(["--json", "show", id], env)).stdout)
        expect(show.status).toBe("deleted")
      })
    )
  )

  it.live("cancel from a second process stops a running restore with the RestoreCancelled exit code", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const volume = join(dir, "big.img")
        writeFileSync(volume, textVolume(64 * 1024 * 1024))
        const id = "0c7e2a4b-2222-4222-8333-944455556666"
        const made = yield* cli(["backup", volume, "--backup-id", id, "--compression", "bz2", "--chunk-size", "131072"], env)
        expect(made.code, made.stderr).toBe(0)
        const target = join(dir, "target.img")
        const running = startCli(["restore", id, target, "--concurrency", "1"], env)
        // The target appears once the restore has checked the documents and started writing.
        yield* Effect.promise(async () => {
          for (let i = 0; i < 400 && !existsSync(target); i++) await new Promise((r) => setTimeout(r, 25))
        })
        expect((yield* cli(["cancel", id], env)).code).toBe(0)
        const cancelledAt = Date.now()
        const result = yield* Effect.promise(() => running.result)
        expect(Date.now() - cancelledAt).toBeLessThan(1000)
        expect(result.code).toBe(exitCodes.RestoreCancelled)
        expect(result.stderr).toContain(`restore of backup ${id} was cancelled`)
        // The backup stays available and restorable.
        const again = yield* cli(["restore", id, join(dir, "again.img"), "--new"], env)
        expect(again.code, again.stderr).toBe(0)
        expect(readFileSync(join(dir, "again.img")).equals(readFileSync(volume))).toBe(true)
      })
    )
  )

  it.live("bad arguments are usage errors; unknown ids and states have their own exit codes", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const volume = join(dir, "v.img")
        writeFileSync(volume, textVolume(100_000))
        expect((yield* cli(["backup"], env)).code).toBe(exitCodes.usage)
        expect((yield* cli(["frobnicate"], env)).code).toBe(exitCodes.usage)
        expect((yield* cli(["backup", volume, "--chunk-size", "lots"], env)).code).toBe(exitCodes.usage)
        // A missing volume is a volume error that names it, as a missing device would be.
        expect((yield* cli(["backup", join(dir, "missing.img")], env)).code).toBe(exitCodes.VolumeError)
        const sizes = yield* cli(["backup", volume, "--chunk-size", "1000", "--sha-block-size", "512"], env)
        expect(sizes.code).toBe(exitCodes.InvalidRequest)
        expect(sizes.stderr).toContain("not a multiple")
        const compression = yield* cli(["backup", volume, "--compression", "lzma"], env)
        expect(compression.code).toBe(exitCodes.InvalidRequest)
        const unknown = yield* cli(["restore", "no-such-backup", join(dir, "t.img")], env)
        expect(unknown.code).toBe(exitCodes.BackupNotFound)
        expect(unknown.stderr).toBe("chunked-backup: backup no-such-backup not found in the catalog\n")
        expect((yield* cli(["show", "nope"], env)).code).toBe(exitCodes.BackupNotFound)
        expect((yield* cli(["cancel", "nope"], env)).code).toBe(exitCodes.BackupNotFound)
        const noParent = yield* cli(["backup", volume, "--incremental"], env)
        expect(noParent.code).toBe(exitCodes.InvalidRequest)
        expect(noParent.stderr).toContain("make a full backup first")
        const store = yield* cli(["--store", "ftp://x", "list"], env)
        expect(store.code).toBe(exitCodes.InvalidRequest)
        const help = yield* cli(["restore", "--help"], env)
        expect(help.code).toBe(0)
        expect(help.stdout).toContain("--new")
      })
    )
  )
})
