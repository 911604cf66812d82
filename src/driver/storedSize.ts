/**
 * What a backup takes in its store, and how well it compressed. Cinder's
 * documents record each object's uncompressed length but not its stored
 * (compressed) length, so stored bytes come only from a store whose listing
 * gives sizes (`listSizes`); otherwise they are unknown, said why. Never
 * fails: a listing, a document or a store that cannot be read makes the
 * figure unknown, with the reason.
 */
import { Effect, Either } from "effect"
import { dataObjects } from "../domain/documents.js"
import type { BackupRecord } from "../domain/record.js"
import { ObjectStore } from "../store/ObjectStore.js"
import { locate, ownObjects, readMetadata } from "./objects.js"

/** A backup's stored bytes and compression ratio from the store's listing, or unknown with the reason. */
export type StoredSize =
  | {
      readonly source: "store listing"
      /** every object of the backup, its two documents included */
      readonly storedBytes: number
      /** volume bytes in the data objects (the metadata's lengths) over their stored bytes; null when unknown */
      readonly ratio: number | null
      /** why the ratio is null */
      readonly ratioUnknown?: string
    }
  | { readonly source: "unknown"; readonly reason: string }

const unknown = (reason: string): StoredSize => ({ source: "unknown", reason })

/** The stored size of `record`'s objects, from the store's listing. */
export const storedSizeOf = (record: BackupRecord): Effect.Effect<StoredSize, never, ObjectStore> =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    if (store.listSizes === undefined) return unknown(`the ${store.kind} store's listing gives no sizes and Cinder's documents record no compressed lengths`)
    const where = yield* Effect.either(locate(record))
    if (Either.isLeft(where)) return unknown("the record names no objects")
    const { container, prefix } = where.right
    const listed = yield* Effect.either(store.listSizes(container, prefix))
    if (Either.isLeft(listed)) return unknown(`listing failed: ${listed.left.message}`)
    const own = new Set(ownObjects(prefix, listed.right.map((o) => o.name)))
    const objects = listed.right.filter((o) => own.has(o.name))
    if (objects.some((o) => !Number.isFinite(o.bytes))) return unknown(`the ${store.kind} listing gave no size for some objects`)
    const storedBytes = objects.reduce((sum, o) => sum + o.bytes, 0)
    const metadata = yield* Effect.either(readMetadata(record))
    if (Either.isLeft(metadata)) return { source: "store listing", storedBytes, ratio: null, ratioUnknown: `metadata unreadable: ${metadata.left.message}` }
    const sizes = new Map(objects.map((o) => [o.name, o.bytes]))
    const data = dataObjects(metadata.right)
    const volumeBytes = data.reduce((sum, o) => sum + o.length, 0)
    const dataStored = data.reduce((sum, o) => sum + (sizes.get(o.name) ?? 0), 0)
    if (dataStored === 0) return { source: "store listing", storedBytes, ratio: null, ratioUnknown: "no data objects stored" }
    return { source: "store listing", storedBytes, ratio: volumeBytes / dataStored }
  })
