/**
 * The CLI under crashes: racing processes, SIGKILL mid-backup and
 * mid-restore; the chain stays sound, cleanup and verify settle it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { cli, startCli } from "../support/cli.js"
import { withTempDir } from "../support/layers.js"
import { objectsIn, textVolume } from "../support/textVolume.js"

const json = (text: string) => JSON.parse(text) as Record<string, unknown>

describe("CLI crash consistency and verify", () => {
  it.live("two processes backing up the same volume incrementally at once: the second is refused, the chain stays sound", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const volume = join(dir, "big.img")
        const data = textVolume(32 * 1024 * 1024)
        writeFileSync(volume, data)
        expect((yield* cli(["backup", volume, "--compression", "none"], env)).code).toBe(0)
        writeFileSync(volume, textVolume(32 * 1024 * 1024, 99))
        const args = ["backup", volume, "--incremental", "--compression", "bz2", "--chunk-size", "1048576", "--concurrency", "1"]
        const first = startCli(args, env)
        // The full backup left 3 files (1 object, 2 documents); wait for the incremental's first object.
        yield* Effect.promise(async () => {
          for (let i = 0; i < 400 && objectsIn(join(dir, "repo", "store")).length < 4; i++) await new Promise((r) => setTimeout(r, 25))
        })
        const second = yield* cli(args, env)
        expect(second.code).toBe(exitCodes.VolumeBusy)
        expect(second.stderr).toMatch(/is being backed up by backup [0-9a-f-]{36}; try again when it has finished/)
        const firstResult = yield* Effect.promise(() => first.result)
        expect(firstResult.code, firstResult.stderr).toBe(0)
        const incrId = firstResult.stdout.trim()
        // The refused attempt left no record, not even an `error` one.
        const all = JSON.parse((yield* cli(["--json", "list", "--all"], env)).stdout) as ReadonlyArray<{ status: string }>
        expect(all.map((r) => r.status), JSON.stringify(all)).toEqual(["available", "available"])
        expect((yield* cli(["verify", incrId, "--full"], env)).code).toBe(0)
        const target = join(dir, "out.img")
        expect((yield* cli(["restore", incrId, target], env)).code).toBe(0)
        expect(readFileSync(target).equals(readFileSync(volume))).toBe(true)
      })
    )
  )

  it.live("a backup killed with SIGKILL stays creating until its lease runs out; cleanup then removes its objects", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo"), CHUNKED_BACKUP_LEASE_SECONDS: "1" }
        const volume = join(dir, "big.img")
        writeFileSync(volume, textVolume(48 * 1024 * 1024))
        const id = "0c7e2a4b-3333-4222-8333-944455556666"
        const running = startCli(["backup", volume, "--backup-id", id, "--compression", "bz2", "--chunk-size", "1048576", "--concurrency", "1"], env)
        yield* Effect.promise(async () => {
          for (let i = 0; i < 400; i++) {
            await new Promise((r) => setTimeout(r, 25))
            try {
              if (objectsIn(join(dir, "repo", "store")).length >= 2) return
            } catch {
              // not yet created
            }
          }
        })
        running.child.kill("SIGKILL")
        yield* Effect.promise(() => running.result)
        expect(json((yield* cli(["--json", "show", id], env)).stdout).status).toBe("creating")
        expect(objectsIn(join(dir, "repo", "store")).length).toBeGreaterThan(0)
        yield* Effect.sleep(1200)
        const cleaned = yield* cli(["cleanup"], env)
        expect(cleaned.code, cleaned.stderr).toBe(0)
        expect(cleaned.stdout).toContain(`${id}: creating -> error`)
        expect(json((yield* cli(["--json", "show", id], env)).stdout).status).toBe("error")
        expect(objectsIn(join(dir, "repo", "store"))).toEqual([])
      })
    )
  )

  it.live("a restore killed halfway leaves the backup restorable; verify checks it and reports corruption", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo"), CHUNKED_BACKUP_LEASE_SECONDS: "1" }
        const volume = join(dir, "big.img")
        writeFileSync(volume, textVolume(48 * 1024 * 1024))
        const id = "0c7e2a4b-4444-4222-8333-944455556666"
        expect((yield* cli(["backup", volume, "--backup-id", id, "--compression", "bz2", "--chunk-size", "131072"], env)).code).toBe(0)
        const target = join(dir, "target.img")
        const running = startCli(["restore", id, target, "--concurrency", "1"], env)
        yield* Effect.promise(async () => {
          for (let i = 0; i < 400 && !existsSync(target); i++) await new Promise((r) => setTimeout(r, 25))
        })
        yield* Effect.sleep(100)
        running.child.kill("SIGKILL")
        yield* Effect.promise(() => running.result)
        yield* Effect.sleep(1200)
        // The next command that needs it settles the dead restore first.
        const verified = yield* cli(["verify", id, "--full"], env)
        expect(verified.code, verified.stderr).toBe(0)
        expect(verified.stdout).toContain("ok: 1 backup(s), 384 objects")
        expect((yield* cli(["cleanup"], env)).stdout).toContain(`${id}: restoring -> available`)
        const again = yield* cli(["restore", id, join(dir, "again.img")], env)
        expect(again.code, again.stderr).toBe(0)
        expect(readFileSync(join(dir, "again.img")).equals(readFileSync(volume))).toBe(true)
        // Corrupt one object: verify names it and fails with its own exit code.
        const storeDir = join(dir, "repo", "store")
        const victim = readdirSync(storeDir, { recursive: true, withFileTypes: true }).find((e) => e.isFile() && e.name.endsWith("-00007"))!
        const victimPath = join(victim.parentPath, victim.name)
        const bytes = readFileSync(victimPath)
        bytes[bytes.length - 10]! ^= 0xff
        writeFileSync(victimPath, bytes)
        const bad = yield* cli(["verify", id], env)
        expect(bad.code).toBe(exitCodes.VerificationFailed)
        expect(bad.stdout).toContain(victim.name)
        expect(bad.stderr).toContain(`backup ${id} failed verification`)
      })
    )
  )
})
