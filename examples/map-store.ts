/**
 * A backend of your own: implement ObjectStoreBackend and wrap it with
 * `make` (the shared name checks) in a Layer. map-store.test.ts runs the
 * kit's conformance suite on it.
 */
import { Effect, Layer } from "effect"
import { ContainerNotFound, make, ObjectNotFound, ObjectStore, swiftStylePrefix, type ObjectStoreBackend } from "chunked-backup"

/** Objects in nested Maps; a real backend would speak to its service here. */
export const mapBackend = (options: { readonly createContainers: boolean }): ObjectStoreBackend => {
  const containers = new Map<string, Map<string, Uint8Array>>()
  const containerOf = (name: string) => {
    const found = containers.get(name)
    return found === undefined ? Effect.fail(new ContainerNotFound({ container: name })) : Effect.succeed(found)
  }
  return {
    kind: "maps",
    defaults: { chunkSize: 8 * 1024 * 1024, shaBlockSize: 32768, service: "example.MapStore", concurrency: 4 },
    containerFor: (backup) => backup.container ?? "backups",
    objectPrefix: (backup, now) => swiftStylePrefix(backup, now, "nova"),
    extraMetadata: () => undefined,
    ensureContainer: (name) =>
      Effect.suspend(() => {
        if (containers.has(name)) return Effect.void
        if (!options.createContainers) return Effect.fail(new ContainerNotFound({ container: name }))
        containers.set(name, new Map())
        return Effect.void
      }),
    list: (name, prefix) => Effect.map(containerOf(name), (objects) => [...objects.keys()].filter((key) => key.startsWith(prefix)).sort()),
    // Copies in and out: a caller may reuse its buffer.
    put: (name, object, bytes) => Effect.map(containerOf(name), (objects) => void objects.set(object, Uint8Array.from(bytes))),
    get: (name, object) =>
      Effect.flatMap(containerOf(name), (objects) => {
        const bytes = objects.get(object)
        return bytes === undefined ? Effect.fail(new ObjectNotFound({ container: name, object })) : Effect.succeed(Uint8Array.from(bytes))
      }),
    delete: (name, object) => Effect.map(containerOf(name), (objects) => void objects.delete(object))
  }
}

/** The backend as an ObjectStore layer: a new, empty store each time it is built. */
export const layerMapStore = (options = { createContainers: true }): Layer.Layer<ObjectStore> =>
  Layer.sync(ObjectStore, () => make(mapBackend(options)))
