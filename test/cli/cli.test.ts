/**
 * End to end: the real bin/chunked-backup in child processes, on the
 * embedded default (posix store + SQLite catalog in a temp repo).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, truncateSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { cli, startCli } from "../support/cli.js"
import { runOracle, type OracleBackupResult, type OracleRecord } from "../support/cinderOracle.js"
import { withTempDir } from "../support/layers.js"

/** Compressible but varied text: bzip2 works hard on it. */
const textVolume = (bytes: number, seed = 7) => {
  const words = ["alpha", "block", "cinder", "delta", "extent", "frame", "glance", "hash", "inode", "journal", "kernel", "ledger"]
  const out = Buffer.alloc(bytes)
  let x = seed
  let offset = 0
  while (offset < bytes) {
    x = (x * 1103515245 + 12345) >>> 0
    offset += out.write(words[x % words.length]! + (x % 7 === 0 ? "\n" : " "), offset)
  }
  return out
}

const objectsIn = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => e.name)

const json = (text: string) => JSON.parse(text) as Record<string, unknown>

/** Whether the file at `path` is `size` bytes: `text`, then zeros (read a piece at a time, not whole). */
const sameAsTextThenZeros = (path: string, text: Uint8Array, size: number) => {
  if (statSync(path).size !== size) return false
  const fd = openSync(path, "r")
  try {
    const piece = Buffer.alloc(64 * 1024 * 1024)
    for (let at = 0; at < size; at += piece.length) {
      const read = readSync(fd, piece, 0, Math.min(piece.length, size - at), at)
      const expected = Buffer.alloc(read)
      if (at < text.length) expected.set(text.subarray(at, at + read))
      if (!piece.subarray(0, read).equals(expected)) return false
    }
    return true
  } finally {
    closeSync(fd)
  }
}

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
    // Cinder's own bzip2 backup of the 1 GiB volume takes ~20 s alone, past a minute beside the heavier files.
    { timeout: 180_000 }
  )
})

const pick = (r: OracleBackupResult) => ({
  container: r.container,
  service_metadata: r.service_metadata,
  object_count: r.object_count,
  service: r.service
})

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
