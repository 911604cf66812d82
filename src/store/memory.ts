/**
 * In-memory ObjectStore, for tests and embedding. Uses Swift's conventions
 * (container `volumebackups`, Swift-style prefixes) so it exercises names with
 * slashes.
 */
import { Effect, Layer } from "effect"
import { ContainerNotFound, ObjectNotFound } from "./errors.js"
import { make, ObjectStore, swiftStylePrefix } from "./ObjectStore.js"

/** Settings of the in-memory store. */
export interface MemoryStoreOptions {
  readonly createContainers?: boolean
  readonly chunkSize?: number
  readonly shaBlockSize?: number
  readonly availabilityZone?: string
}

/** A new, empty in-memory store. */
export const makeMemory = (options: MemoryStoreOptions = {}): Effect.Effect<ObjectStore> => Effect.sync(() => {
  const containers = new Map<string, Map<string, Uint8Array>>()
  const containerOf = (container: string) =>
    Effect.suspend(() => {
      const objects = containers.get(container)
      return objects === undefined ? Effect.fail(new ContainerNotFound({ container })) : Effect.succeed(objects)
    })
  return make({
    kind: "memory",
    defaults: {
      chunkSize: options.chunkSize ?? 52428800,
      shaBlockSize: options.shaBlockSize ?? 32768,
      service: "chunked_backup.memory",
      concurrency: 4
    },
    containerFor: (backup) => backup.container ?? "volumebackups",
    objectPrefix: (backup, now) => swiftStylePrefix(backup, now, backup.availability_zone ?? options.availabilityZone ?? "nova"),
    extraMetadata: () => undefined,
    ensureContainer: (container) =>
      Effect.suspend(() => {
        if (containers.has(container)) return Effect.void
        if (options.createContainers === false) return Effect.fail(new ContainerNotFound({ container }))
        containers.set(container, new Map())
        return Effect.void
      }),
    list: (container, prefix) =>
      Effect.map(containerOf(container), (objects) => [...objects.keys()].filter((name) => name.startsWith(prefix)).sort()),
    listSizes: (container, prefix) =>
      Effect.map(containerOf(container), (objects) =>
        [...objects].filter(([name]) => name.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, bytes]) => ({ name, bytes: bytes.length }))
      ),
    // A copy, so callers reusing their buffer cannot change a stored object.
    put: (container, object, bytes) =>
      Effect.map(containerOf(container), (objects) => void objects.set(object, Uint8Array.from(bytes))),
    get: (container, object) =>
      Effect.flatMap(containerOf(container), (objects) => {
        const bytes = objects.get(object)
        return bytes === undefined ? Effect.fail(new ObjectNotFound({ container, object })) : Effect.succeed(Uint8Array.from(bytes))
      }),
    delete: (container, object) =>
      Effect.sync(() => void containers.get(container)?.delete(object))
  })
})

/** An in-memory store, new and empty each time the layer is built. */
export const layerMemory = (options: MemoryStoreOptions = {}): Layer.Layer<ObjectStore> => Layer.effect(ObjectStore, makeMemory(options))
