/**
 * ObjectStore: where backup objects live. It mirrors the abstract methods of
 * Cinder's ChunkedBackupDriver (put_container, get_container_entries,
 * get_object_writer/reader, delete_object, update_container_name,
 * _generate_object_name_prefix, get_extra_metadata) in Effect form.
 *
 * A backend implements `ObjectStoreBackend`; `make` adds the checks every
 * backend needs (name validation) so each layer stays thin. Only `make`
 * produces an ObjectStore (it carries a mark no other code can write), so a
 * backend cannot be provided without the checks by accident; decorators
 * that spread a store keep its mark and its checked methods underneath.
 */
import { Context, Effect } from "effect"
import type { BackupRecord } from "../domain/record.js"
import { InvalidObjectName, type ObjectNotFound, type StoreFailure } from "./errors.js"

/** Cinder's per-backend defaults. */
export interface StoreDefaults {
  readonly chunkSize: number
  readonly shaBlockSize: number
  /** Cinder's `backup_service` value for records written through this store */
  readonly service: string
  /** how many object transfers pay off at once */
  readonly concurrency: number
}

/** An object as a listing with sizes gives it. */
export interface ListedObject {
  readonly name: string
  /** its size in the store, in bytes */
  readonly bytes: number
}

/** What a backend implements: Cinder's chunked driver's storage methods. `make` turns it into an ObjectStore. */
export interface ObjectStoreBackend {
  /** e.g. "memory", "posix", "swift", "s3" */
  readonly kind: string
  readonly defaults: StoreDefaults
  /** update_container_name + backup_default_container: the container a backup uses. */
  readonly containerFor: (backup: BackupRecord) => string
  /** _generate_object_name_prefix, with the clock passed in for determinism. */
  readonly objectPrefix: (backup: BackupRecord, now: Date) => string
  /** get_extra_metadata: handed back to every read and write of the backup's objects. */
  readonly extraMetadata: (backup: BackupRecord) => unknown
  /** put_container: creates it if missing, unless the store was told not to. */
  readonly ensureContainer: (container: string) => Effect.Effect<void, StoreFailure>
  /** get_container_entries: names in the container that start with `prefix`. */
  readonly list: (container: string, prefix: string) => Effect.Effect<ReadonlyArray<string>, StoreFailure>
  /**
   * `list` with each object's stored size (after compression), for stores
   * whose listing gives sizes: what `list --tree` and `show` report as
   * stored bytes. Absent: the store cannot say without reading the objects.
   */
  readonly listSizes?: (container: string, prefix: string) => Effect.Effect<ReadonlyArray<ListedObject>, StoreFailure>
  /** Writes a whole object atomically: a failed or interrupted write leaves nothing behind. */
  readonly put: (
    container: string,
    object: string,
    bytes: Uint8Array,
    extraMetadata?: unknown
  ) => Effect.Effect<void, StoreFailure>
  readonly get: (
    container: string,
    object: string,
    extraMetadata?: unknown
  ) => Effect.Effect<Uint8Array, StoreFailure | ObjectNotFound>
  /** Deleting a missing object succeeds. */
  readonly delete: (container: string, object: string) => Effect.Effect<void, StoreFailure>
  /**
   * Called once a backup's objects under `prefix` are deleted: removes what
   * its writes left behind, the temp files of interrupted writes and, where
   * the container is the backup's own (posix's default `id[0:2]/id[2:4]/id`),
   * that container and its parents while they are empty. For stores whose
   * writes leave nothing, absent. Returns how many temp files were removed.
   */
  readonly removeLeftovers?: (container: string, prefix: string) => Effect.Effect<number, StoreFailure>
  /**
   * The object's file, for stores whose objects are local files (posix): a
   * restore's codec worker then reads it itself, sparing the main thread a
   * copy and several thread hand-offs per object. Undefined for a name that
   * is not valid here. Decorators that must see every read leave it out.
   */
  readonly localPath?: (container: string, object: string) => string | undefined
  /**
   * The containers holding backups, for stores where each backup may have
   * its own (posix's default `id[0:2]/id[2:4]/id`): what `scan` looks in when
   * no container is named. Absent: the store's default container.
   */
  readonly containers?: Effect.Effect<ReadonlyArray<string>, StoreFailure>
}

/** The mark of a store made by `make`; not exported from the package, so no literal can carry it. */
const namesChecked: unique symbol = Symbol("chunked-backup/ObjectStore/namesChecked")

/** A backend with the shared name checks in front of it: what the drivers use. Made by `make`. */
export interface ObjectStore extends ObjectStoreBackend {
  readonly [namesChecked]: true
}

export const ObjectStore = Context.GenericTag<ObjectStore>("chunked-backup/ObjectStore")

const MAX_NAME_BYTES = 1024

/**
 * Rules every backend shares: non-empty, no NUL, not absolute, no `.`/`..`
 * segments, bounded length. Backends add their own (posix: one path segment
 * for objects, 255 bytes).
 */
const nameProblem = (name: string): string | undefined => {
  if (name.length === 0) return "is empty"
  if (name.includes("\0")) return "contains a NUL byte"
  if (name.startsWith("/") || name.includes("\\")) return "is absolute or contains a backslash"
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return `is longer than ${MAX_NAME_BYTES} bytes`
  if (name.split("/").some((segment) => segment === "." || segment === ".." || segment === "")) {
    return "contains an empty, '.' or '..' path segment"
  }
  return undefined
}

export const checkName = (name: string): Effect.Effect<void, InvalidObjectName> => {
  const reason = nameProblem(name)
  return reason === undefined ? Effect.void : Effect.fail(new InvalidObjectName({ name, reason }))
}

/** The ObjectStore of a backend: its operations behind the shared name checks. */
export const make = (backend: ObjectStoreBackend): ObjectStore => ({
  ...backend,
  [namesChecked]: true,
  ensureContainer: (container) => Effect.zipRight(checkName(container), backend.ensureContainer(container)),
  list: (container, prefix) => Effect.zipRight(checkName(container), backend.list(container, prefix)),
  put: (container, object, bytes, extra) =>
    Effect.zipRight(Effect.zipRight(checkName(container), checkName(object)), backend.put(container, object, bytes, extra)),
  get: (container, object, extra) =>
    Effect.zipRight(Effect.zipRight(checkName(container), checkName(object)), backend.get(container, object, extra)),
  delete: (container, object) =>
    Effect.zipRight(Effect.zipRight(checkName(container), checkName(object)), backend.delete(container, object)),
  ...(backend.removeLeftovers === undefined
    ? {}
    : {
        removeLeftovers: (container: string, prefix: string) =>
          Effect.zipRight(checkName(container), backend.removeLeftovers!(container, prefix))
      }),
  ...(backend.listSizes === undefined
    ? {}
    : { listSizes: (container: string, prefix: string) => Effect.zipRight(checkName(container), backend.listSizes!(container, prefix)) }),
  ...(backend.localPath === undefined
    ? {}
    : {
        localPath: (container: string, object: string) =>
          nameProblem(container) === undefined && nameProblem(object) === undefined ? backend.localPath!(container, object) : undefined
      })
})

/** The store without `localPath`: for decorators, whose reads must all go through `get`. */
export const withoutLocalPaths = ({ localPath: _, ...store }: ObjectStore): ObjectStore => store

/** Cinder's `%Y%m%d%H%M%S` of a UTC instant. */
export const utcStamp = (date: Date): string => date.toISOString().replace(/[-:T]/g, "").slice(0, 14)

/** The Swift/S3 prefix: `volume_<vol>/<stamp>/az_<az>_backup_<id>`. */
export const swiftStylePrefix = (backup: BackupRecord, now: Date, az: string): string =>
  `volume_${backup.volume_id}/${utcStamp(now)}/az_${az}_backup_${backup.id}`
