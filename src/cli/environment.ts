/**
 * From the global options to the layers a command runs on: the store named
 * by `--store` and the catalog named by `--catalog` (a SQLite file, or a
 * PostgreSQL URL shared by many hosts), both under `--repo` by default.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Config, Effect, Either, Layer, Option } from "effect"
import { existsSync, mkdirSync } from "node:fs"
import { isAbsolute, join, resolve } from "node:path"
import { InvalidRequest, RepositoryNotFound } from "../domain/errors.js"
import { layerMemoryCatalog } from "../catalog/memory.js"
import { layerPgCatalog } from "../catalog/pg.js"
import { layerSqliteCatalog } from "../catalog/sqlite.js"
import { layerRetry, parseRetryBudget } from "../store/decorators.js"
import { layerPosix } from "../store/posix.js"
import { describeConfigError, parseStoreUrl, storeUrlLayer, storeUrlTls } from "../store/storeConfig.js"

export interface GlobalOptions {
  readonly repo: string
  readonly store: Option.Option<string>
  readonly catalog: Option.Option<string>
  readonly json: boolean
  readonly verbose: boolean
}

/**
 * How long one store call's transient failures are retried: the
 * CHUNKED_BACKUP_RETRY_FOR environment variable (e.g. `30s`, `2m`), else
 * DEFAULT_RETRY_BUDGET. A value that is not a duration is refused, not ignored.
 */
export const retryBudget = Effect.gen(function* () {
  const given = yield* Config.option(Config.string("CHUNKED_BACKUP_RETRY_FOR")).pipe(Effect.orElseSucceed(() => Option.none<string>()))
  if (Option.isNone(given)) return {}
  const budget = parseRetryBudget(given.value)
  if (Either.isLeft(budget)) return yield* new InvalidRequest({ reason: `CHUNKED_BACKUP_RETRY_FOR: ${budget.left}` })
  return { maxElapsed: budget.right }
})

/**
 * `posix:<dir>` (relative to the working directory); `swift…` and `s3…` URLs
 * (src/store/storeConfig.ts; secrets from the environment), with retries of
 * transient failures (for `retryBudget`) and Node's HTTP client.
 */
export const storeLayer = (url: string) =>
  Effect.flatMap(retryBudget, (policy) => {
    const network = parseStoreUrl(url)
    if (network !== undefined) {
      if (Either.isLeft(network)) return Effect.fail(new InvalidRequest({ reason: `store ${url}: ${network.left}` }))
      return Effect.all([storeUrlLayer(network.right), storeUrlTls(network.right)]).pipe(
        Effect.mapError((error) => new InvalidRequest({ reason: `store ${url}: ${describeConfigError(error)}` })),
        Effect.flatMap(([layer, tls]) =>
          // Loaded here: Node's HTTP client costs every command ~40 ms of start-up, and most use a posix store.
          Effect.promise(() => import("../store/tls.js")).pipe(
            Effect.flatMap(({ layerHttpClientTls }) => layerHttpClientTls(tls)),
            Effect.mapError((reason) => new InvalidRequest({ reason: `store ${url}: ${reason}` })),
            Effect.map((http) => layerRetry(policy).pipe(Layer.provide(layer), Layer.provide(http)))
          )
        )
      )
    }
    const [scheme, ...rest] = url.split(":")
    const location = rest.join(":")
    if (scheme === "posix" && location !== "") {
      return Effect.succeed(layerPosix({ root: isAbsolute(location) ? location : resolve(location) }))
    }
    return Effect.fail(
      new InvalidRequest({ reason: `unsupported store ${JSON.stringify(url)}: expected posix:<directory>, swift[+http]://…, s3://<bucket>, swift or s3` })
    )
  })

const URL_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//

/**
 * The PostgreSQL catalog at `url`: postgres[ql]://USER@HOST:PORT/DB, the
 * password from PGPASSWORD or a .pgpass file, never in the URL (where it
 * would show in the process list and the shell's history).
 */
const pgCatalogLayer = (url: string) =>
  Effect.gen(function* () {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return yield* new InvalidRequest({ reason: "the --catalog URL is not a valid postgres://USER@HOST:PORT/DB URL" })
    }
    if (parsed.password !== "") {
      return yield* new InvalidRequest({
        reason: "the --catalog URL must not hold a password: give it in PGPASSWORD or a .pgpass file"
      })
    }
    if (parsed.hostname === "" || parsed.pathname.length <= 1) {
      return yield* new InvalidRequest({ reason: `the --catalog URL ${url} needs a host and a database: postgres://USER@HOST:PORT/DB` })
    }
    return layerPgCatalog(url)
  })

/** The catalog `--catalog` names; a `scheme://` this CLI does not know is refused, never taken for a file name. */
const catalogLayer = (options: GlobalOptions, repo: string, create: boolean, emptyIfMissing: boolean) =>
  Effect.gen(function* () {
    const given = Option.getOrUndefined(options.catalog)
    const scheme = given === undefined ? undefined : URL_SCHEME.exec(given)?.[1]?.toLowerCase()
    if (given !== undefined && scheme !== undefined) {
      if (scheme === "postgres" || scheme === "postgresql") return yield* pgCatalogLayer(given)
      return yield* new InvalidRequest({
        reason: `unsupported catalog ${scheme}://…: expected a SQLite file path or postgres://USER@HOST:PORT/DB`
      })
    }
    const catalogFile = resolve(given ?? join(repo, "catalog.sqlite"))
    if (emptyIfMissing && !existsSync(catalogFile)) return layerMemoryCatalog()
    // A read of a repository that is not there must not leave an empty one behind.
    if (!create && !existsSync(catalogFile)) return yield* new RepositoryNotFound({ catalog: catalogFile })
    yield* Effect.try({
      try: () => mkdirSync(join(catalogFile, ".."), { recursive: true }),
      catch: (e) => new InvalidRequest({ reason: `cannot create the repository directory: ${String(e)}` })
    })
    return layerSqliteCatalog(catalogFile)
  })

/**
 * `create` makes a missing repository; `emptyIfMissing` reads a missing
 * catalog as an empty one in memory, writing nothing (scan --dry-run).
 */
export const servicesFor = (options: GlobalOptions, { create, emptyIfMissing = false }: { readonly create: boolean; readonly emptyIfMissing?: boolean }) =>
  Effect.gen(function* () {
    const repo = resolve(options.repo)
    const storeUrl = Option.getOrElse(options.store, () => `posix:${join(repo, "store")}`)
    const store = yield* storeLayer(storeUrl)
    const catalog = yield* catalogLayer(options, repo, create, emptyIfMissing)
    return Layer.mergeAll(store, catalog).pipe(Layer.provideMerge(NodeFileSystem.layer))
  })
