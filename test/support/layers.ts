/**
 * Test wiring: the services a driver program needs, and volumes on disk.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { layerMemory, layerMemoryCatalog, ObjectStore, type MemoryStoreOptions } from "../../src/index.js"

/** Memory store + memory catalog + Node's FileSystem. */
export const memoryServices = (options: MemoryStoreOptions = {}) =>
  Layer.mergeAll(layerMemory(options), layerMemoryCatalog, NodeFileSystem.layer)

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
