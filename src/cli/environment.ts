/**
 * From the global options to the layers a command runs on: the store named
 * by `--store` and the SQLite catalog, both under `--repo` by default.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, Either, Layer, Option } from "effect"
import { existsSync, mkdirSync } from "node:fs"
import { isAbsolute, join, resolve } from "node:path"
import { InvalidRequest, RepositoryNotFound } from "../domain/errors.js"
import { layerMemoryCatalog } from "../catalog/memory.js"
import { layerSqliteCatalog } from "../catalog/sqlite.js"
import { layerRetry } from "../store/decorators.js"
import { layerPosix } from "../store/posix.js"
import { describeConfigError, parseStoreUrl, storeUrlLayer } from "../store/storeConfig.js"

export interface GlobalOptions {
  readonly repo: string
  readonly store: Option.Option<string>
  readonly catalog: Option.Option<string>
  readonly json: boolean
  readonly verbose: boolean
}

/**
 * `posix:<dir>` (relative to the working directory); `swift…` and `s3…` URLs
 * (src/store/storeConfig.ts; secrets from the environment), with retries of
 * transient failures and Node's HTTP client.
 */
export const storeLayer = (url: string) => {
  const network = parseStoreUrl(url)
  if (network !== undefined) {
    if (Either.isLeft(network)) return Effect.fail(new InvalidRequest({ reason: `store ${url}: ${network.left}` }))
    return storeUrlLayer(network.right).pipe(
      Effect.mapError((error) => new InvalidRequest({ reason: `store ${url}: ${describeConfigError(error)}` })),
      Effect.map((layer) => layerRetry().pipe(Layer.provide(layer), Layer.provide(NodeHttpClient.layerUndici)))
    )
  }
  const [scheme, ...rest] = url.split(":")
  const location = rest.join(":")
  switch (scheme) {
    case "posix":
      if (location === "") break
      return Effect.succeed(layerPosix({ root: isAbsolute(location) ? location : resolve(location) }))
  }
  return Effect.fail(
    new InvalidRequest({ reason: `unsupported store ${JSON.stringify(url)}: expected posix:<directory>, swift[+http]://…, s3://<bucket>, swift or s3` })
  )
}

/**
 * `create` makes a missing repository; `emptyIfMissing` reads a missing
 * catalog as an empty one in memory, writing nothing (scan --dry-run).
 */
export const servicesFor = (options: GlobalOptions, { create, emptyIfMissing = false }: { readonly create: boolean; readonly emptyIfMissing?: boolean }) =>
  Effect.gen(function* () {
    const repo = resolve(options.repo)
    const storeUrl = Option.getOrElse(options.store, () => `posix:${join(repo, "store")}`)
    const catalogFile = Option.getOrElse(options.catalog, () => join(repo, "catalog.sqlite"))
    const store = yield* storeLayer(storeUrl)
    if (emptyIfMissing && !existsSync(resolve(catalogFile))) return Layer.mergeAll(store, layerMemoryCatalog()).pipe(Layer.provideMerge(NodeFileSystem.layer))
    // A read of a repository that is not there must not leave an empty one behind.
    if (!create && !existsSync(resolve(catalogFile))) return yield* new RepositoryNotFound({ catalog: resolve(catalogFile) })
    yield* Effect.try({
      try: () => mkdirSync(join(resolve(catalogFile), ".."), { recursive: true }),
      catch: (e) => new InvalidRequest({ reason: `cannot create the repository directory: ${String(e)}` })
    })
    return Layer.mergeAll(store, layerSqliteCatalog(resolve(catalogFile))).pipe(Layer.provideMerge(NodeFileSystem.layer))
  })
