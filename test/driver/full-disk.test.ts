/**
 * Full disks, through the CLI: a posix store on a small tmpfs that a backup
 * does not fit (ENOSPC named, what it wrote removed, the record `error`,
 * the other backups untouched and verifying), a restore onto a full
 * filesystem (a VolumeError, the backup still restorable), and a SQLite
 * catalog on a full filesystem (a CatalogError, not a crash). The tmpfs
 * mounts are the tests' own (test/support/mounts.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { closeSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { cli } from "../support/cli.js"
import { withTempDir } from "../support/layers.js"
import { canMount, MOUNT_SKIP_REASON, smallFilesystem } from "../support/mounts.js"

const filesIn = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort()

/** Writes a file until the filesystem is full. */
const fill = (path: string) => {
  const fd = openSync(path, "w")
  const block = Buffer.alloc(64 * 1024, 7)
  try {
    for (;;) writeSync(fd, block)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOSPC") throw error
  } finally {
    closeSync(fd)
  }
}

/** `body` with a temporary directory and a tmpfs of `mib` MiB, both gone afterwards. */
const onSmallFilesystem = <A, E>(mib: number, body: (dir: string, small: string) => Effect.Effect<A, E>) =>
  Effect.scoped(withTempDir((dir) => Effect.flatMap(smallFilesystem(mib), (small) => body(dir, small))))

const json = (text: string) => JSON.parse(text) as Array<{ id: string; status: string }>

if (!canMount) {
  describe.skip(`full disks (${MOUNT_SKIP_REASON})`, () => {
    it("needs mount", () => {})
  })
} else {
  describe("full disks", () => {
    it.live("a backup that does not fit the store fails naming ENOSPC, removes its objects, is `error`; the others still verify", () =>
      onSmallFilesystem(12, (dir, small) =>
          Effect.gen(function* () {
            const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
            const store = ["--store", `posix:${small}`]
            const first = randomBytes(3 * 1024 * 1024 + 5)
            writeFileSync(join(dir, "first.img"), first)
            const ok = yield* cli(["backup", join(dir, "first.img"), ...store, "--compression", "none", "--chunk-size", "1048576"], env)
            expect(ok.code, ok.stderr).toBe(0)
            const firstId = ok.stdout.trim()
            const before = filesIn(small)
            const before_bytes = before.map((f) => readFileSync(f))

            writeFileSync(join(dir, "big.img"), randomBytes(20 * 1024 * 1024))
            const big = yield* cli(["backup", join(dir, "big.img"), ...store, "--compression", "none", "--chunk-size", "1048576"], env)
            expect(big.code, big.stderr).toBe(exitCodes.StoreError)
            expect(big.stderr).toMatch(/store write of \S+ failed: the store's filesystem is full \(.*ENOSPC/)
            expect(big.stderr).not.toContain("internal error")
            // Nothing of the failed backup is left, the first one's objects are as they were.
            expect(filesIn(small)).toEqual(before)
            expect(before.map((f) => readFileSync(f).equals(before_bytes[before.indexOf(f)]!))).not.toContain(false)
            const list = json((yield* cli(["--json", "list", "--all", ...store], env)).stdout)
            expect(list.map((r) => r.status)).toEqual(["available", "error"])

            const verified = yield* cli(["verify", firstId, "--full", ...store], env)
            expect(verified.code, verified.stderr).toBe(0)
            const restored = yield* cli(["restore", firstId, join(dir, "out.img"), "--new", ...store], env)
            expect(restored.code, restored.stderr).toBe(0)
            expect(readFileSync(join(dir, "out.img")).equals(first)).toBe(true)
          })
      )
    )

    it.live("a restore onto a full filesystem is a VolumeError naming ENOSPC; the backup stays restorable", () =>
      onSmallFilesystem(2, (dir, small) =>
          Effect.gen(function* () {
            const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
            const data = randomBytes(4 * 1024 * 1024)
            writeFileSync(join(dir, "disk.img"), data)
            const backup = yield* cli(["backup", join(dir, "disk.img"), "--chunk-size", "1048576"], env)
            expect(backup.code, backup.stderr).toBe(0)
            const id = backup.stdout.trim()
            const full = yield* cli(["restore", id, join(small, "out.img"), "--new"], env)
            expect(full.code, full.stderr).toBe(exitCodes.VolumeError)
            expect(full.stderr).toContain("ENOSPC")
            const again = yield* cli(["restore", id, join(dir, "out.img"), "--new"], env)
            expect(again.code, again.stderr).toBe(0)
            expect(readFileSync(join(dir, "out.img")).equals(data)).toBe(true)
            expect(json((yield* cli(["--json", "list"], env)).stdout).map((r) => r.status)).toEqual(["available"])
          })
      )
    )

    it.live("a SQLite catalog on a full filesystem is a CatalogError, not a crash", () =>
      onSmallFilesystem(1, (dir, small) =>
          Effect.gen(function* () {
            const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
            const catalog = ["--catalog", join(small, "catalog.sqlite")]
            writeFileSync(join(dir, "disk.img"), randomBytes(256 * 1024))
            const first = yield* cli(["backup", join(dir, "disk.img"), ...catalog], env)
            expect(first.code, first.stderr).toBe(0)
            fill(join(small, "filler"))
            const second = yield* cli(["backup", join(dir, "disk.img"), ...catalog, "--name", "x".repeat(8192)], env)
            expect(second.code, second.stderr).toBe(exitCodes.CatalogError)
            expect(second.stderr).not.toContain("internal error")
            expect(second.stderr).toMatch(/(SQLITE_FULL|SQLITE_IOERR\w*|ENOSPC): is the disk holding the catalog full\?/)
          })
      )
    )
  })
}
