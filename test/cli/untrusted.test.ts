/**
 * Hostile documents through the real CLI: a typed exit code that names the
 * backup (never 1, never 0 with wrong bytes), and what the default restore
 * checks, as an operator sees it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { cli } from "../support/cli.js"
import { patternedVolume, withTempDir } from "../support/layers.js"

/** The posix store's file of the backup's object ending in `suffix`. */
const storeFile = (storeRoot: string, suffix: string): string => {
  const files = readdirSync(storeRoot, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith(suffix))
  expect(files.length).toBe(1)
  return join(files[0]!.parentPath, files[0]!.name)
}

const editJson = (path: string, change: (document: Record<string, any>) => void) => {
  const document = JSON.parse(readFileSync(path, "utf8")) as Record<string, any>
  change(document)
  writeFileSync(path, JSON.stringify(document))
}

/** A repo with one full backup of a 64 KiB volume in 8 KiB objects, stored raw. */
const withBackup = <A, E>(use: (f: { dir: string; env: Record<string, string>; id: string; store: string; data: Buffer }) => Effect.Effect<A, E>) =>
  withTempDir((dir) =>
    Effect.gen(function* () {
      const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
      const data = Buffer.from(patternedVolume(64 * 1024))
      writeFileSync(join(dir, "disk.img"), data)
      const made = yield* cli(["backup", join(dir, "disk.img"), "--chunk-size", "8192", "--sha-block-size", "1024", "--compression", "none"], env)
      expect(made.code, made.stderr).toBe(0)
      return yield* use({ dir, env, id: made.stdout.trim(), store: join(dir, "repo", "store"), data })
    })
  )

describe("CLI on untrusted documents", () => {
  it.live("metadata nested 5,000 deep and an offset near 1e15: exit 5 naming the backup, nothing written; verify exits 16", () =>
    withBackup(({ dir, env, id, store }) =>
      Effect.gen(function* () {
        const metadata = storeFile(store, "_metadata")
        const original = readFileSync(metadata, "utf8")
        writeFileSync(metadata, original.replace("{", `{"extra_metadata": ${"[".repeat(5000)}${"]".repeat(5000)}, `))
        const target = join(dir, "restored.img")
        const deep = yield* cli(["restore", id, target], env)
        expect(deep.code, deep.stderr).toBe(exitCodes.InvalidBackup)
        expect(deep.stderr).toContain(`backup ${id} is invalid`)
        expect(deep.stderr).toContain("nested more than 32 levels")
        expect(existsSync(target)).toBe(false)
        const verified = yield* cli(["verify", id], env)
        expect(verified.code, verified.stderr).toBe(exitCodes.VerificationFailed)
        writeFileSync(metadata, original)
        editJson(metadata, (m) => ((Object.values(m.objects[1])[0] as Record<string, number>).offset = 1e15))
        const far = yield* cli(["restore", id, target], env)
        expect(far.code, far.stderr).toBe(exitCodes.InvalidBackup)
        expect(far.stderr).toContain("outside the 65536-byte volume")
        expect(existsSync(target)).toBe(false)
      })
    )
  )

  it.live("a forged object with a rewritten md5: restore exits 6 by the sha256 check; --no-verify-sha256 restores it (md5s only, as Cinder)", () =>
    withBackup(({ dir, env, id, store, data }) =>
      Effect.gen(function* () {
        const target = join(dir, "restored.img")
        const good = yield* cli(["restore", id, target], env)
        expect(good.code, good.stderr).toBe(0)
        expect(good.stdout).toContain("every block checked against its sha256")
        expect(readFileSync(target).equals(data)).toBe(true)
        const object = storeFile(store, "-00003")
        const forged = Buffer.alloc(8192, 0x5a)
        writeFileSync(object, forged)
        editJson(storeFile(store, "_metadata"), (m) => ((Object.values(m.objects[2])[0] as Record<string, string>).md5 = createHash("md5").update(forged).digest("hex")))
        const refused = yield* cli(["restore", id, join(dir, "checked.img")], env)
        expect(refused.code, refused.stderr).toBe(exitCodes.IntegrityError)
        expect(refused.stderr).toMatch(/-00003 is corrupt \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64} for sha block 16 \(offset 16384\)/)
        const unchecked = yield* cli(["restore", id, join(dir, "unchecked.img"), "--no-verify-sha256"], env)
        expect(unchecked.code, unchecked.stderr).toBe(0)
        expect(unchecked.stdout).toContain("md5s only")
        const full = yield* cli(["verify", id, "--full"], env)
        expect(full.code).toBe(exitCodes.VerificationFailed)
        expect(full.stdout).toContain("does not match the sha256 file")
      })
    )
  )

  it.live("a data object replaced by a symlink to a host file: restore exits 9 naming it, and the file's bytes are not restored", () =>
    withBackup(({ dir, env, id, store }) =>
      Effect.gen(function* () {
        const secret = join(dir, "secret")
        writeFileSync(secret, Buffer.alloc(8192, 0x73))
        const object = storeFile(store, "-00002")
        unlinkSync(object)
        symlinkSync(secret, object)
        const target = join(dir, "restored.img")
        const restored = yield* cli(["restore", id, target, "--no-verify-sha256"], env)
        expect(restored.code, restored.stderr).toBe(exitCodes.StoreError)
        expect(restored.stderr).toContain("-00002")
        expect(restored.stderr).toContain("symbolic link")
        if (existsSync(target)) expect(readFileSync(target).includes(Buffer.alloc(64, 0x73))).toBe(false)
      })
    )
  )
})
