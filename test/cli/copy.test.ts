/**
 * `chunked-backup copy` end to end: the real CLI between repositories on
 * disk, through Swift, killed with SIGKILL in the middle and run again, and
 * Cinder's own driver restoring the copied chain.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { cli, startCli } from "../support/cli.js"
import { runOracle, type OracleRecord } from "../support/cinderOracle.js"
import { patternedVolume, withTempDir } from "../support/layers.js"
import { freshDatabase, pgUrl } from "../support/pg.js"
import { loopback, uniqueContainer } from "../support/swift.js"

const json = (text: string) => JSON.parse(text) as Record<string, unknown>
const VOLUME_ID = "5e1f0c3a-7b2d-4c8e-9f10-a1b2c3d4e5f6"

/** A full backup and three incrementals made by the CLI in `repo`; the volume's bytes at each. */
const cliChain = (dir: string, repo: string, size: number, chunkSize: number) =>
  Effect.gen(function* () {
    const volume = join(dir, "disk.img")
    const data = Buffer.from(patternedVolume(size, 5))
    const ids: Array<string> = []
    const states: Array<Buffer> = []
    for (let i = 0; i < 4; i++) {
      if (i > 0) data.fill(0x40 + i, i * 250_000, i * 250_000 + 90_000)
      writeFileSync(volume, data)
      const made = yield* cli(["--repo", repo, "backup", volume, "--volume-id", VOLUME_ID, "--chunk-size", String(chunkSize), ...(i === 0 ? [] : ["--incremental"])])
      expect(made.code, made.stderr).toBe(0)
      ids.push(made.stdout.trim())
      states.push(Buffer.from(data))
    }
    return { ids, states }
  })

/** Restores each backup with the CLI from `where` (global options) and compares. */
const restoresExactly = (where: ReadonlyArray<string>, dir: string, ids: ReadonlyArray<string>, states: ReadonlyArray<Buffer>, env: Record<string, string> = {}) =>
  Effect.forEach(ids, (id, i) =>
    Effect.gen(function* () {
      const target = join(dir, `restored-${i}.img`)
      const restored = yield* cli([...where, "restore", id, target, "--new"], env)
      expect(restored.code, restored.stderr).toBe(0)
      expect(readFileSync(target).equals(states[i]!), `backup ${i}`).toBe(true)
    })
  )

/** Data object files under a posix store, by name, with what shows whether they were written again (inode, mtime). */
const storedFiles = (root: string) =>
  new Map(
    readdirSync(root, { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile() && !e.name.startsWith(".") && /-\d{5}$/.test(e.name))
      .map((e) => {
        const stat = statSync(join(e.parentPath, e.name), { bigint: true })
        return [e.name, `${stat.ino}:${stat.mtimeNs}`] as const
      })
  )

describe("chunked-backup copy", () => {
  it.live("--to-repo copies a chain that restores there, Cinder restores it after import-record, a second run is a no-op, clashes are refused", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const source = join(dir, "source")
        const destination = join(dir, "destination")
        const { ids, states } = yield* cliChain(dir, source, 2 * 1024 * 1024 + 8192, 262144)
        const copied = yield* cli(["--repo", source, "--json", "copy", ids[3]!.slice(0, 8), "--to-repo", destination])
        expect(copied.code, copied.stderr).toBe(0)
        const report = json(copied.stdout)
        expect(report).toMatchObject({ backupId: ids[3], objectsSkipped: 0 })
        expect((report.backups as Array<{ backupId: string; outcome: string }>).map((b) => [b.backupId, b.outcome])).toEqual(ids.map((id) => [id, "copied"]))
        expect(json(copied.stderr.trim().split("\n").at(-1)!)).toMatchObject({ type: "progress", operation: "copy", done: true })
        yield* restoresExactly(["--repo", destination], dir, ids, states)
        const verified = yield* cli(["--repo", destination, "verify", "--full", ids[3]!])
        expect(verified.code, verified.stderr).toBe(0)

        // Cinder's PosixBackupDriver restores the copy from the records exported at the destination.
        const store = join(destination, "store")
        const decoded: Array<OracleRecord> = []
        for (const id of ids) {
          const exported = yield* cli(["--repo", destination, "--json", "export-record", id])
          expect(exported.code, exported.stderr).toBe(0)
          decoded.push((yield* Effect.promise(() => runOracle({ op: "import", backup_path: store, record: json(exported.stdout) }))) as unknown as OracleRecord)
        }
        const target = join(dir, "cinder-restored.img")
        writeFileSync(target, Buffer.alloc(states[3]!.length))
        yield* Effect.promise(() =>
          runOracle({ op: "restore", backup_path: store, volume_path: target, backup: { ...decoded[3]!, status: "restoring" }, backups: decoded.slice(0, 3) })
        )
        expect(readFileSync(target).equals(states[3]!)).toBe(true)

        const again = yield* cli(["--repo", source, "copy", ids[3]!, "--to-repo", destination])
        expect(again.code, again.stderr).toBe(0)
        expect(again.stdout).toBe(`backup ${ids[3]} and its 3 ancestor(s) are already available at the destination: nothing was copied\n`)

        // A different backup under the same id at a destination: refused, exit 3.
        const other = join(dir, "other")
        const otherVolume = join(dir, "other.img")
        writeFileSync(otherVolume, patternedVolume(100_000, 8))
        const clash = yield* cli(["--repo", other, "backup", otherVolume, "--backup-id", ids[0]!, "--volume-id", "another-volume"])
        expect(clash.code, clash.stderr).toBe(0)
        const refused = yield* cli(["--repo", source, "copy", ids[1]!, "--to-repo", other])
        expect(refused.code).toBe(exitCodes.InvalidRequest)
        expect(refused.stderr).toContain(`the destination holds a different backup under id ${ids[0]}`)
        const otherList = json((yield* cli(["--repo", other, "--json", "list", "--all"])).stdout) as unknown as Array<{ id: string }>
        expect(otherList.map((r) => r.id)).toEqual([ids[0]])

        const nowhere = yield* cli(["--repo", source, "copy", ids[3]!])
        expect(nowhere.code).toBe(exitCodes.InvalidRequest)
        expect(nowhere.stderr).toContain("name the destination")
      })
    ), 180_000
  )

  it.live("a corrupt source object exits 6 naming it, and the destination record is error, not available", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const source = join(dir, "source")
        const destination = join(dir, "destination")
        const { ids } = yield* cliChain(dir, source, 1024 * 1024 + 4096, 262144)
        const victim = [...storedFiles(join(source, "store")).keys()].find((name) => name.includes(ids[0]!) && name.endsWith("-00002"))!
        const path = readdirSync(join(source, "store"), { withFileTypes: true, recursive: true }).find((e) => e.name === victim)!
        const file = join(path.parentPath, victim)
        const bytes = readFileSync(file)
        bytes[bytes.length >> 1]! ^= 0x5a
        writeFileSync(file, bytes)
        const copied = yield* cli(["--repo", source, "copy", ids[3]!, "--to-repo", destination])
        expect(copied.code, copied.stderr).toBe(exitCodes.IntegrityError)
        expect(copied.stderr).toContain(`backup ${ids[0]}: object ${victim} is corrupt`)
        const records = json((yield* cli(["--repo", destination, "--json", "list", "--all"])).stdout) as unknown as Array<{ id: string; status: string }>
        expect(records.map((r) => [r.id, r.status])).toEqual([[ids[0], "error"]])
      })
    ), 120_000
  )

  it.live("kill -9 in the middle: nothing is available at the destination; the rerun sends only what is missing and ends available", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const source = join(dir, "source")
        const destination = join(dir, "destination")
        const env = { CHUNKED_BACKUP_LEASE_SECONDS: "1" }
        // 256 objects of 64 KiB in the full backup: a copy of them one at a time takes long enough to be killed in.
        const { ids, states } = yield* cliChain(dir, source, 16 * 1024 * 1024, 65536)
        const running = startCli(["--repo", source, "copy", ids[3]!, "--to-repo", destination, "--concurrency", "1"], env)
        const store = join(destination, "store")
        let before = new Map<string, string>()
        for (let tries = 0; tries < 4000 && before.size < 20; tries++) {
          yield* Effect.sleep("5 millis")
          try {
            before = storedFiles(store)
          } catch {
            // the store is not there yet
          }
        }
        running.child.kill("SIGKILL")
        const killed = yield* Effect.promise(() => running.result)
        expect(killed.signal).toBe("SIGKILL")
        before = storedFiles(store)
        expect(before.size).toBeGreaterThanOrEqual(20)
        const records = json((yield* cli(["--repo", destination, "--json", "list", "--all"])).stdout) as unknown as Array<{ id: string; status: string }>
        expect(records.map((r) => [r.id, r.status])).toEqual([[ids[0], "creating"]])

        // Once the dead process's lease has run out, the rerun takes the record over.
        yield* Effect.sleep("1500 millis")
        const rerun = yield* cli(["--repo", source, "--json", "copy", ids[3]!, "--to-repo", destination], env)
        expect(rerun.code, rerun.stderr).toBe(0)
        const report = json(rerun.stdout)
        expect(report.objectsSkipped).toBe(before.size)
        const after = storedFiles(store)
        // Every object stored before the kill is the same file, never written again.
        for (const [name, identity] of before) expect(after.get(name), name).toBe(identity)
        expect(Number(report.objectsCopied) + Number(report.objectsSkipped)).toBe(after.size)
        yield* restoresExactly(["--repo", destination], dir, ids, states)
      })
    ), 180_000
  )

  it.live.skipIf(loopback === undefined)("--to-store swift+http with --to-catalog, and back to a posix repository from there", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const sw = loopback!
        const source = join(dir, "source")
        const { ids, states } = yield* cliChain(dir, source, 1024 * 1024 + 4096, 262144)
        const url = `${sw.authUrl.replace(/^http:/, "swift+http:")}?container=${uniqueContainer("cli-copy")}`
        const env = { SWIFT_USER: sw.user, SWIFT_KEY: sw.key }
        const swiftCatalog = join(dir, "swift.sqlite")
        const toSwift = yield* cli(["--repo", source, "copy", ids[3]!, "--to-store", url, "--to-catalog", swiftCatalog], env)
        expect(toSwift.code, toSwift.stderr).toBe(0)
        expect(toSwift.stdout).toMatch(/^copied 4 backup\(s\), 0 already there: \d+ objects sent/m)
        const back = yield* cli(["--store", url, "--catalog", swiftCatalog, "copy", ids[3]!, "--to-repo", join(dir, "back")], env)
        expect(back.code, back.stderr).toBe(0)
        yield* restoresExactly(["--repo", join(dir, "back")], dir, ids, states)
      })
    ), 180_000
  )

  it.live.skipIf(loopback === undefined || pgUrl === undefined)("--to-store s3:// with a postgres:// catalog: the copy restores from there", () =>
    withTempDir((dir) =>
      Effect.scoped(
        Effect.gen(function* () {
          const sw = loopback!
          const { url: catalog } = yield* freshDatabase()
          const source = join(dir, "source")
          const { ids, states } = yield* cliChain(dir, source, 1024 * 1024 + 4096, 262144)
          const store = `s3://${uniqueContainer("cli-copy")}?endpoint=${sw.s3Endpoint}&region=${sw.s3Region}&path-style=true`
          const env = { AWS_ACCESS_KEY_ID: sw.s3AccessKey, AWS_SECRET_ACCESS_KEY: sw.s3SecretKey }
          const copied = yield* cli(["--repo", source, "copy", ids[3]!, "--to-store", store, "--to-catalog", catalog, "--concurrency", "2"], env)
          expect(copied.code, copied.stderr).toBe(0)
          const listed = json((yield* cli(["--store", store, "--catalog", catalog, "--json", "list"], env)).stdout) as unknown as Array<{ id: string; status: string; service: string }>
          expect(listed.map((r) => [r.id, r.status, r.service])).toEqual(ids.map((id) => [id, "available", "cinder.backup.drivers.s3.S3BackupDriver"]))
          yield* restoresExactly(["--store", store, "--catalog", catalog], dir, ids, states, env)
        })
      )
    ), 180_000
  )
})
