/**
 * Where a soak runs: the CLI's default posix store + SQLite catalog under a
 * fresh repository, or a fresh container of a Swift (the loopback one) with a
 * SQLite catalog. Each gives the CLI's global options and environment, and a
 * listing of everything in the store, made apart from the CLI: a walk of the
 * posix directory, or the Swift container's listing through the library's
 * ObjectStore.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { existsSync, readdirSync } from "node:fs"
import { join, relative } from "node:path"
import { ObjectStore } from "../../store/ObjectStore.js"
import { layerSwift } from "../../store/swift.js"

export interface StoredObject {
  readonly container: string
  readonly name: string
}

export interface StoreListing {
  readonly objects: ReadonlyArray<StoredObject>
  /** posix: directories under the root that hold no file at any depth */
  readonly emptyDirectories: ReadonlyArray<string>
}

export interface Target {
  readonly name: "posix" | "swift"
  /** what every CLI command of this target starts with */
  readonly globals: ReadonlyArray<string>
  readonly env: Record<string, string>
  readonly list: Effect.Effect<StoreListing, unknown>
  /** where the store is, for the report */
  readonly where: string
  /** removes what the soak left in a store outside its temporary directory (the Swift container's objects) */
  readonly dispose: Effect.Effect<void>
}

/** Files and empty directories under `root`, each file as its directory (the container) and name. */
const walk = (root: string): StoreListing => {
  const objects: Array<StoredObject> = []
  const emptyDirectories: Array<string> = []
  const visit = (dir: string): boolean => {
    let holdsFile = false
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) holdsFile = visit(path) || holdsFile
      else {
        objects.push({ container: relative(root, dir), name: entry.name })
        holdsFile = true
      }
    }
    if (!holdsFile && dir !== root) emptyDirectories.push(relative(root, dir))
    return holdsFile
  }
  if (existsSync(root)) visit(root)
  return { objects, emptyDirectories }
}

export const posixTarget = (dir: string): Target => {
  const repo = join(dir, "repo")
  return {
    name: "posix",
    globals: ["--repo", repo],
    env: {},
    list: Effect.sync(() => walk(join(repo, "store"))),
    where: `posix:${join(repo, "store")}`,
    // The store is inside the soak's temporary directory, removed with it.
    dispose: Effect.void
  }
}

export interface SwiftAccount {
  /** e.g. http://127.0.0.1:8080/auth/v1.0 */
  readonly authUrl: string
  readonly user: string
  readonly key: string
}

/** The Swift account from the loopback's variables (scripts/swift-loopback.sh env), if they are set. */
export const swiftAccountFromEnv = (env: NodeJS.ProcessEnv): SwiftAccount | undefined =>
  env.SWIFT_LOOPBACK_AUTH_URL === undefined
    ? undefined
    : { authUrl: env.SWIFT_LOOPBACK_AUTH_URL, user: env.SWIFT_LOOPBACK_USER ?? "test:tester", key: env.SWIFT_LOOPBACK_KEY ?? "testing" }

export const swiftTarget = (dir: string, account: SwiftAccount): Target => {
  const container = `cb-soak-${randomBytes(5).toString("hex")}`
  const url = `${account.authUrl.replace(/^http:/, "swift+http:").replace(/^https:/, "swift:")}?container=${container}`
  const env = { SWIFT_USER: account.user, SWIFT_KEY: account.key }
  const store = layerSwift({ auth: { type: "v1", authUrl: account.authUrl, user: account.user, key: Redacted.make(account.key) } }).pipe(
    Layer.provide(NodeHttpClient.layerUndici)
  )
  /** `use` with the container's store and the names in it. */
  const withNames = <A>(use: (store: ObjectStore, names: ReadonlyArray<string>) => Effect.Effect<A, unknown>) =>
    Effect.flatMap(ObjectStore, (store) =>
      store.list(container, "").pipe(
        Effect.catchTag("ContainerNotFound", () => Effect.succeed([] as ReadonlyArray<string>)),
        Effect.flatMap((names) => use(store, names))
      )
    ).pipe(Effect.provide(store))
  return {
    name: "swift",
    globals: ["--catalog", join(dir, "catalog.sqlite"), "--store", url],
    env,
    list: withNames((_, names) => Effect.succeed({ objects: names.map((name) => ({ container, name })), emptyDirectories: [] })),
    where: url,
    dispose: withNames((store, names) => Effect.forEach(names, (name) => store.delete(container, name), { concurrency: 8, discard: true })).pipe(Effect.ignoreLogged)
  }
}
