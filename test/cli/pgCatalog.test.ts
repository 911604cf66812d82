/**
 * The CLI on a PostgreSQL catalog: `--catalog postgres://USER@HOST:PORT/DB`
 * (or postgresql://), the password only from PGPASSWORD or a .pgpass file,
 * `sslmode` honoured, and a `scheme://` the CLI does not know refused
 * instead of being taken for a SQLite file name.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { env } from "node:process"
import { exitCodes } from "../../src/cli/errors.js"
import { cli } from "../support/cli.js"
import { patternedVolume, withTempDir } from "../support/layers.js"
import { freshDatabase, PG_SKIP_REASON, pgUrl, runSql } from "../support/pg.js"

const pwUser = env.PG_LOOPBACK_PW_USER ?? "chunked_pw"
const pwPassword = env.PG_LOOPBACK_PW_PASSWORD ?? "loopback-pw"

/** The URL of `url`'s database as the password role, with `query` appended. */
const asPasswordRole = (url: string, query = "") => {
  const u = new URL(url)
  u.username = pwUser
  return u.toString() + query
}

describe("CLI catalog URLs", () => {
  it.live("a scheme:// the CLI does not know is refused (exit 3), and no directory named after it is made", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        for (const url of ["mysql://db.example/backups", "sqlite://catalog.db", "http://x/y"]) {
          const run = yield* cli(["--repo", join(dir, "repo"), "--catalog", url, "list"])
          expect(run.code, run.stderr).toBe(exitCodes.InvalidRequest)
          expect(run.stderr).toContain("unsupported catalog")
          expect(existsSync(url.split("/")[0]!)).toBe(false)
        }
      })))

  it.live("a password in the URL is refused (exit 3) and never printed", () =>
    Effect.gen(function* () {
      const run = yield* cli(["--catalog", "postgres://someone:hunter2secret@127.0.0.1:55432/db", "list"])
      expect(run.code, run.stderr).toBe(exitCodes.InvalidRequest)
      expect(run.stderr).toContain("PGPASSWORD")
      expect(run.stderr + run.stdout).not.toContain("hunter2secret")
    }))
})

describe.skipIf(pgUrl === undefined)(pgUrl === undefined ? `CLI on a PostgreSQL catalog (skipped: ${PG_SKIP_REASON})` : "CLI on a PostgreSQL catalog", () => {
  it.live("backup, incremental, list and bit-exact restore through postgres:// and postgresql://", () =>
    withTempDir((dir) =>
      Effect.scoped(Effect.gen(function* () {
        const { url } = yield* freshDatabase()
        const store = `posix:${join(dir, "store")}`
        const volume = join(dir, "disk.img")
        const data = patternedVolume(512 * 1024)
        writeFileSync(volume, data)
        const full = yield* cli(["--catalog", url, "--store", store, "backup", volume, "--volume-id", "v1", "--chunk-size", "65536"])
        expect(full.code, full.stderr).toBe(0)
        data.fill(7, 65536, 2 * 65536)
        writeFileSync(volume, data)
        const other = url.replace(/^postgres:/, "postgresql:")
        const incr = yield* cli(["--catalog", other, "--store", store, "backup", volume, "--volume-id", "v1", "--incremental", "--chunk-size", "65536"])
        expect(incr.code, incr.stderr).toBe(0)
        const listed = JSON.parse((yield* cli(["--json", "--catalog", url, "--store", store, "list"])).stdout) as unknown
        expect(JSON.stringify(listed)).toContain(incr.stdout.trim())
        expect(runSql(url, "SELECT count(*) FROM backups WHERE status = 'available'").trim()).toBe("2")
        const target = join(dir, "restored.img")
        const restored = yield* cli(["--catalog", url, "--store", store, "restore", incr.stdout.trim(), target])
        expect(restored.code, restored.stderr).toBe(0)
        expect(readFileSync(target).equals(data)).toBe(true)
      }))))

  it.live("the password comes from PGPASSWORD or a .pgpass file; without one it is a catalog error (exit 12) that prints no secret", () =>
    withTempDir((dir) =>
      Effect.scoped(Effect.gen(function* () {
        const { url } = yield* freshDatabase()
        runSql(url, `GRANT ALL ON SCHEMA public TO ${pwUser}`)
        const catalog = asPasswordRole(url)
        const args = ["--catalog", catalog, "--store", `posix:${join(dir, "store")}`, "list"]
        const home = join(dir, "home")
        const noPassword = { PGPASSWORD: "", HOME: home, PGPASSFILE: join(home, "absent") }
        const denied = yield* cli(args, noPassword)
        expect(denied.code, denied.stderr).toBe(exitCodes.CatalogError)
        expect(denied.stderr).toMatch(/password/i)

        const fromEnv = yield* cli(args, { ...noPassword, PGPASSWORD: pwPassword })
        expect(fromEnv.code, fromEnv.stderr).toBe(0)
        expect(fromEnv.stdout + fromEnv.stderr).not.toContain(pwPassword)

        const passfile = join(dir, "pgpass")
        const u = new URL(url)
        writeFileSync(passfile, `${u.hostname}:${u.port}:*:${pwUser}:${pwPassword}\n`)
        chmodSync(passfile, 0o600)
        const fromFile = yield* cli(args, { ...noPassword, PGPASSFILE: passfile })
        expect(fromFile.code, fromFile.stderr).toBe(0)

        const wrong = yield* cli(args, { ...noPassword, PGPASSWORD: "not-the-password" })
        expect(wrong.code).toBe(exitCodes.CatalogError)
        expect(wrong.stderr).not.toContain("not-the-password")
      }))))

  it.live("sslmode in the URL is honoured: require fails against a server without TLS (exit 12), disable connects", () =>
    withTempDir((dir) =>
      Effect.scoped(Effect.gen(function* () {
        const { url } = yield* freshDatabase()
        const store = `posix:${join(dir, "store")}`
        const required = yield* cli(["--catalog", `${url}?sslmode=require`, "--store", store, "list"])
        expect(required.code, required.stderr).toBe(exitCodes.CatalogError)
        expect(required.stderr).toMatch(/SSL/i)
        const disabled = yield* cli(["--catalog", `${url}?sslmode=disable`, "--store", store, "list"])
        expect(disabled.code, disabled.stderr).toBe(0)
      }))))
})
