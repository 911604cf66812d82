/**
 * What a backend author does, through the package's public names only
 * ("chunked-backup" and "chunked-backup/testing", resolved by its exports
 * map): write an ObjectStore with `make` and run the kit's conformance
 * suite on it. Without `make` a backend cannot be provided at all.
 */
import { Effect, Layer } from "effect"
import { ContainerNotFound, make, ObjectNotFound, ObjectStore, swiftStylePrefix, type ObjectStoreBackend } from "chunked-backup"
import { objectStoreConformance } from "chunked-backup/testing"

/** A backend of maps: containers hold objects; `createContainers: false` refuses to make one. */
const mapBackend = (createContainers = true): ObjectStoreBackend => {
  const containers = new Map<string, Map<string, Uint8Array>>()
  const containerOf = (name: string) => {
    const found = containers.get(name)
    return found === undefined ? Effect.fail(new ContainerNotFound({ container: name })) : Effect.succeed(found)
  }
  return {
    kind: "maps",
    defaults: { chunkSize: 1024 * 1024, shaBlockSize: 32768, service: "example.MapStore", concurrency: 4 },
    containerFor: (backup) => backup.container ?? "backups",
    objectPrefix: (backup, now) => swiftStylePrefix(backup, now, "nova"),
    extraMetadata: () => undefined,
    ensureContainer: (name) =>
      Effect.suspend(() => {
        if (containers.has(name)) return Effect.void
        if (!createContainers) return Effect.fail(new ContainerNotFound({ container: name }))
        containers.set(name, new Map())
        return Effect.void
      }),
    list: (name, prefix) => Effect.map(containerOf(name), (objects) => [...objects.keys()].filter((k) => k.startsWith(prefix)).sort()),
    put: (name, object, bytes) => Effect.map(containerOf(name), (objects) => void objects.set(object, Uint8Array.from(bytes))),
    get: (name, object) =>
      Effect.flatMap(containerOf(name), (objects) => {
        const bytes = objects.get(object)
        return bytes === undefined ? Effect.fail(new ObjectNotFound({ container: name, object })) : Effect.succeed(Uint8Array.from(bytes))
      }),
    delete: (name, object) => Effect.map(containerOf(name), (objects) => void objects.delete(object))
  }
}

const mapStore = (createContainers = true) => Layer.sync(ObjectStore, () => make(mapBackend(createContainers)))

// A backend provided without `make` would skip the shared name checks: it does not typecheck.
// @ts-expect-error: an ObjectStoreBackend is not an ObjectStore
export const unchecked = Layer.sync(ObjectStore, () => mapBackend())

objectStoreConformance("a backend written with the public API (maps)", mapStore(), {
  slashInObjectNames: true,
  refusingLayer: mapStore(false)
})
