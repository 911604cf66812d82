/**
 * Naming and reading of one backup's objects in its container.
 */
import { Effect } from "effect"
import { FORMAT_VERSION, type BackupMetadata } from "../domain/documents.js"
import { InvalidBackup, UnsupportedVersion } from "../domain/errors.js"
import type { BackupRecord } from "../domain/record.js"
import { decodeMetadata } from "../format/documents.js"
import { decodeSha256Digests } from "../format/sha256Digests.js"
import { someOf } from "../format/untrusted.js"
import { ObjectStore } from "../store/ObjectStore.js"

export const metadataName = (prefix: string) => `${prefix}_metadata`
export const sha256Name = (prefix: string) => `${prefix}_sha256file`
/** `%05d` from 1; wider past 99999, as Python's formatting does. */
export const dataObjectName = (prefix: string, index: number) => `${prefix}-${String(index).padStart(5, "0")}`

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * The names that belong to the backup with `prefix`. Cinder matches by
 * prefix alone, so backup "b" would claim "b1"'s objects; ours are exactly
 * `<prefix>-NNNNN`, `<prefix>_metadata` and `<prefix>_sha256file`.
 */
export const ownObjects = (prefix: string, names: ReadonlyArray<string>): Array<string> => {
  const own = new RegExp(`^${escapeRegExp(prefix)}(-\\d{5,}|_metadata|_sha256file)$`)
  return names.filter((name) => own.test(name))
}

/** Where a recorded backup's objects are; fails when the record has none. */
export const locate = (record: BackupRecord) =>
  record.container === null || record.service_metadata === null
    ? Effect.fail(new InvalidBackup({ backupId: record.id, reason: "the record has no container or object prefix" }))
    : Effect.succeed({ container: record.container, prefix: record.service_metadata })

/** The stored bytes of one of the record's documents (`metadataName` or `sha256Name`), with the object's name. */
export const readDocument = (record: BackupRecord, name: (prefix: string) => string) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const { container, prefix } = yield* locate(record)
    const object = name(prefix)
    const bytes = yield* store.get(container, object, store.extraMetadata(record))
    return { object, bytes }
  })

/** The metadata document, refused unless its version is 1.0.0. */
export const readMetadata = (record: BackupRecord) =>
  Effect.flatMap(readDocument(record, metadataName), ({ object, bytes }) => decodeRecordMetadata(record, object, bytes))

/** The metadata document `object` holds as `bytes`, refused unless its version is 1.0.0 and it is `record`'s. */
export const decodeRecordMetadata = (record: BackupRecord, object: string, bytes: Uint8Array) =>
  Effect.gen(function* () {
    const metadata = yield* decodeMetadata(record.id, object, bytes)
    if (metadata.version !== FORMAT_VERSION) {
      return yield* new UnsupportedVersion({ backupId: record.id, version: metadata.version })
    }
    if (metadata.backup_id !== record.id) {
      return yield* new InvalidBackup({
        backupId: record.id,
        object,
        reason: `metadata belongs to backup ${metadata.backup_id}`
      })
    }
    return metadata
  })

export const readSha256File = (record: BackupRecord) =>
  Effect.flatMap(readDocument(record, sha256Name), ({ object, bytes }) => decodeSha256Digests(record.id, object, bytes))

/**
 * Cinder's restore check: the container's objects under the prefix (less the
 * two documents) must be exactly the metadata's objects.
 */
export const checkObjectList = (record: BackupRecord, metadata: BackupMetadata) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const { container, prefix } = yield* locate(record)
    const documents = new Set([metadataName(prefix), sha256Name(prefix)])
    const stored = ownObjects(prefix, yield* store.list(container, prefix)).filter((name) => !documents.has(name))
    const expected = metadata.objects.flatMap((item) => Object.keys(item))
    const storedSet = new Set(stored)
    const expectedSet = new Set(expected)
    const missing = expected.filter((name) => !storedSet.has(name))
    const extra = stored.filter((name) => !expectedSet.has(name))
    if (missing.length > 0 || extra.length > 0 || expected.length !== expectedSet.size) {
      const parts = [
        missing.length > 0 ? `missing ${someOf(missing)}` : "",
        extra.length > 0 ? `unexpected ${someOf(extra)}` : "",
        expected.length !== expectedSet.size ? "duplicate names in metadata" : ""
      ].filter((part) => part !== "")
      return yield* new InvalidBackup({
        backupId: record.id,
        reason: `actual object list does not match the metadata: ${parts.join("; ")}`
      })
    }
  })

/** Deletes in flight at once, at least. */
const DELETE_CONCURRENCY = 16

/** Deletes every object under the backup's prefix (Cinder's delete_backup). */
export const deleteObjects = (record: BackupRecord) =>
  Effect.gen(function* () {
    if (record.container === null || record.service_metadata === null) return 0
    const store = yield* ObjectStore
    const container = record.container
    const listed = yield* store.list(container, record.service_metadata).pipe(
      Effect.catchTag("ContainerNotFound", () => Effect.succeed([] as ReadonlyArray<string>))
    )
    const names = ownObjects(record.service_metadata, listed)
    // A delete moves no data: more of them at once than transfers (a cancelled backup's clean-up is timed).
    yield* Effect.forEach(names, (name) => store.delete(container, name), {
      concurrency: Math.max(DELETE_CONCURRENCY, store.defaults.concurrency),
      discard: true
    })
    if (store.removeLeftovers !== undefined) yield* store.removeLeftovers(container, record.service_metadata)
    return names.length
  })
