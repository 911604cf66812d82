/**
 * Test wiring: the services a driver program needs, and volumes on disk.
 */
import type { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { Effect, Layer, Scope } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BackupCatalog, CodecPool, layerMemory, layerMemoryCatalog, makeCodecPool, ObjectStore, type MemoryStoreOptions } from "../../src/index.js"

/**
 * One codec pool for all the tests of a file: a pool per test would start
 * its workers hundreds of times. Its scope is never closed; idle workers do
 * not keep the test process alive. (test/codec/pool.test.ts checks the
 * scoped life cycle itself.)
 */
export const sharedCodecPool: Layer.Layer<CodecPool> = Layer.succeed(
  CodecPool,
  Effect.runSync(Effect.flatMap(Scope.make(), (scope) => Scope.extend(makeCodecPool(), scope)))
)

/** What a driver program needs besides a store and a catalog: Node's FileSystem and the codec pool. */
export const localServices: Layer.Layer<CodecPool | FileSystem.FileSystem> = Layer.merge(NodeFileSystem.layer, sharedCodecPool)

/** Memory store + memory catalog + Node's FileSystem + the codec pool. */
export const memoryServices = (options: MemoryStoreOptions = {}) => Layer.mergeAll(layerMemory(options), layerMemoryCatalog(), localServices)

/** A temp directory for the duration of the effect. */
export const withTempDir = <A, E, R>(use: (dir: string) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "cb-test-"))),
    use,
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

export const writeVolume = (path: string, bytes: Uint8Array) => Effect.sync(() => writeFileSync(path, bytes))

/** Replaces the ObjectStore with `wrap(store)` for the wrapped program. */
export const wrapStore = (wrap: (store: ObjectStore) => ObjectStore) =>
  <A, E, R>(program: Effect.Effect<A, E, R>) =>
    Effect.flatMap(ObjectStore, (store) => Effect.provideService(program, ObjectStore, wrap(store)))

/**
 * Deterministic volume bytes: runs of `zeroRun` zeros every `period` bytes,
 * pseudo-random bytes between them.
 */
export const patternedVolume = (size: number, seed = 1, period = 3000, zeroRun = 1000): Uint8Array => {
  const bytes = new Uint8Array(size)
  let x = seed
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    bytes[i] = i % period < zeroRun ? 0 : x >>> 24
  }
  return bytes
}

/** Rewrites one stored object of backup `id` (by name suffix, e.g. "-00002"); `change` returning null deletes it. */
export const tamper = (id: string, suffix: string, change: (bytes: Uint8Array) => Uint8Array | null) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const record = yield* (yield* BackupCatalog).get(id)
    const name = `${record.service_metadata}${suffix}`
    const next = change(yield* store.get(record.container!, name))
    if (next === null) yield* store.delete(record.container!, name)
    else yield* store.put(record.container!, name, next)
  })

/** Polls `check` every 20 ms until it holds; dies naming `what` after `within` ms. */
export const waitUntil = (what: string, check: () => Effect.Effect<boolean, unknown>, within = 20_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + within
    while (!(yield* check())) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })
