/**
 * From the global options to the layers a command runs on: the store named
 * by `--store` and the SQLite catalog, both under `--repo` by default.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import { mkdirSync } from "node:fs"
import { isAbsolute, join, resolve } from "node:path"
import { InvalidRequest } from "../domain/errors.js"
import { layerSqliteCatalog } from "../catalog/sqlite.js"
import { layerPosix } from "../store/posix.js"

export interface GlobalOptions {
  readonly repo: string
  readonly store: Option.Option<string>
  readonly catalog: Option.Option<string>
  readonly json: boolean
  readonly verbose: boolean
}

/** `posix:<dir>` (relative to the working directory); Swift and S3 URLs come with their layers. */
export const storeLayer = (url: string) => {
  const [scheme, ...rest] = url.split(":")
  const location = rest.join(":")
  switch (scheme) {
    case "posix":
      if (location === "") break
      return Effect.succeed(layerPosix({ root: isAbsolute(location) ? location : resolve(location) }))
  }
  return Effect.fail(
    new InvalidRequest({ reason: `unsupported store ${JSON.stringify(url)}: expected posix:<directory>` })
  )
}

export const servicesFor = (options: GlobalOptions) =>
  Effect.gen(function* () {
    const repo = resolve(options.repo)
    const storeUrl = Option.getOrElse(options.store, () => `posix:${join(repo, "store")}`)
    const catalogFile = Option.getOrElse(options.catalog, () => join(repo, "catalog.sqlite"))
    yield* Effect.try({
      try: () => mkdirSync(join(resolve(catalogFile), ".."), { recursive: true }),
      catch: (e) => new InvalidRequest({ reason: `cannot create the repository directory: ${String(e)}` })
    })
    const store = yield* storeLayer(storeUrl)
    return Layer.mergeAll(store, layerSqliteCatalog(resolve(catalogFile))).pipe(Layer.provideMerge(NodeFileSystem.layer))
  })
