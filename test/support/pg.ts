/**
 * The loopback PostgreSQL of `scripts/pg-loopback.sh` for the tests: found
 * through PG_LOOPBACK_URL; each test gets a database of its own, dropped
 * when its scope closes.
 */
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { env } from "node:process"

export const pgUrl: string | undefined = env.PG_LOOPBACK_URL

/** Why a PostgreSQL test is skipped (outside CI; in CI a missing server fails the run instead). */
export const PG_SKIP_REASON = "no loopback PostgreSQL (run `scripts/pg-loopback.sh start` and `eval \"$(scripts/pg-loopback.sh env)\"`)"

if (pgUrl === undefined && env.CI === "true") throw new Error(`CI=true but ${PG_SKIP_REASON}`)

const psql = (url: string, statement: string) =>
  execFileSync("psql", [url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", statement], { encoding: "utf8" })

/** `url` with another database name. */
export const withDatabase = (url: string, database: string) => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** Runs one statement on `url` through psql (a client independent of the one under test). */
export const runSql = psql

/** A new empty database on the loopback server for the enclosing scope; its URL. */
export const freshDatabase = (base: string = pgUrl!) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const name = `cb_${randomBytes(6).toString("hex")}`
      psql(base, `CREATE DATABASE ${name}`)
      return { name, url: withDatabase(base, name) }
    }),
    ({ name }) => Effect.sync(() => psql(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
  )
