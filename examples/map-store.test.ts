/**
 * The kit's conformance suite on the backend of map-store.ts, with
 * @effect/vitest: `npx vitest run map-store.test.ts`.
 */
import { Layer } from "effect"
import { ObjectStore } from "chunked-backup"
import { objectStoreConformance } from "chunked-backup/testing"
import { layerMapStore, mapBackend } from "./map-store.js"

objectStoreConformance("maps", layerMapStore(), {
  slashInObjectNames: true,
  refusingLayer: layerMapStore({ createContainers: false })
})

// A backend provided without `make` would skip the shared name checks, so it does not compile.
// @ts-expect-error: an ObjectStoreBackend is not an ObjectStore
export const unchecked = Layer.sync(ObjectStore, () => mapBackend({ createContainers: true }))
