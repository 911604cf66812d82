/**
 * The two on-store documents of format 1.0.0: `<prefix>_metadata` and
 * `<prefix>_sha256file`. Field names are Cinder's, snake_case on purpose.
 */
import { Schema } from "effect"

/** The `version` of the metadata documents Cinder writes (and this library): "1.0.0". */
export const FORMAT_VERSION = "1.0.0"

const NonNegativeInt = Schema.Number.pipe(Schema.int(), Schema.nonNegative())

/** One data object: where its bytes go in the volume and how they are stored. */
export const ObjectEntry = Schema.Struct({
  compression: Schema.NullOr(Schema.String),
  length: NonNegativeInt,
  md5: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{32}$/)),
  offset: NonNegativeInt
})
export type ObjectEntry = typeof ObjectEntry.Type

/** `{"<object name>": entry}`: exactly one key, as Cinder writes it. */
export const ObjectListItem = Schema.Record({ key: Schema.String, value: ObjectEntry }).pipe(
  Schema.filter((item) => Object.keys(item).length === 1 || "each objects[] item must have exactly one key")
)

/** The fields both documents start with. */
const DocumentHeader = {
  version: Schema.String,
  backup_id: Schema.String,
  volume_id: Schema.String,
  backup_name: Schema.NullOr(Schema.String),
  backup_description: Schema.NullOr(Schema.String),
  created_at: Schema.String
}

/** The `_metadata` document of a backup: its objects in order, with offsets, lengths, md5s and compression. */
export const BackupMetadata = Schema.Struct({
  ...DocumentHeader,
  parent_id: Schema.NullOr(Schema.String),
  volume_meta: Schema.NullOr(Schema.String),
  objects: Schema.Array(ObjectListItem),
  extra_metadata: Schema.optional(Schema.Unknown)
})
/** The `_metadata` document of a backup: its objects in order, with offsets, lengths, md5s and compression. */
export type BackupMetadata = typeof BackupMetadata.Type

/** The `_sha256file` document of a backup: the sha256 of every block of the volume. */
export const Sha256File = Schema.Struct({
  ...DocumentHeader,
  /** the sha block size, despite the name */
  chunk_size: Schema.Number.pipe(Schema.int(), Schema.positive()),
  sha256s: Schema.Array(Schema.String)
})
/** The `_sha256file` document of a backup: the sha256 of every block of the volume. */
export type Sha256File = typeof Sha256File.Type

/** A data object with its name, flattened out of the metadata's one-key items. */
export interface DataObject extends ObjectEntry {
  readonly name: string
}

/** The data objects of a metadata document, in its order, each with its name beside its entry. */
export const dataObjects = (metadata: BackupMetadata): ReadonlyArray<DataObject> =>
  metadata.objects.flatMap((item) => Object.entries(item).map(([name, entry]) => ({ name, ...entry })))
