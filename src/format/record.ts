/**
 * Cinder's backup record export format (`cinder backup-export`): a
 * `backup_service` (the driver's class path) and a `backup_url`, base64 of
 * `jsonutils.dumps` of every field of `cinder.objects.Backup` but `parent`,
 * after the driver's extra info (`driver_info`). Field order and datetime
 * text follow Cinder's, so the bytes match what Cinder itself would export.
 */
import { Effect, Either, ParseResult, Schema } from "effect"
import { InvalidRequest } from "../domain/errors.js"
import { BackupStatus, type BackupRecord } from "../domain/record.js"
import { pythonJsonDumpsCompact } from "./pythonJson.js"

const GiB = 1024 ** 3

/** oslo.versionedobjects' DateTimeField primitive: whole seconds, `Z`. */
const isoTime = (date: Date | null) => (date === null ? null : date.toISOString().slice(0, 19) + "Z")

/** Cinder's `backup export-record` output: the backup service and the base64 record. */
export interface ExportedRecord {
  readonly backup_service: string
  readonly backup_url: string
}

/** `dependents`: how many live incrementals name it as their parent (Cinder's num_dependent_backups). */
export const exportRecord = (record: BackupRecord, service: string, dependents = 0): ExportedRecord => {
  const fields = {
    // Cinder's chunked drivers export no driver info; ours carries the exact
    // volume size, which Cinder ignores on import.
    driver_info: { volume_size_bytes: record.volume_size_bytes },
    id: record.id,
    user_id: "",
    project_id: "",
    volume_id: record.volume_id,
    host: null,
    availability_zone: record.availability_zone,
    container: record.container,
    parent_id: record.parent_id,
    status: record.status,
    fail_reason: record.fail_reason,
    size: record.size,
    display_name: record.display_name,
    display_description: record.display_description,
    service_metadata: record.service_metadata,
    service: record.service ?? service,
    object_count: record.object_count,
    temp_volume_id: null,
    temp_snapshot_id: null,
    num_dependent_backups: dependents,
    snapshot_id: null,
    data_timestamp: isoTime(record.created_at),
    restore_volume_id: null,
    metadata: {},
    encryption_key_id: null,
    created_at: isoTime(record.created_at),
    updated_at: isoTime(record.updated_at),
    deleted_at: null,
    deleted: false
  }
  return {
    backup_service: record.service ?? service,
    backup_url: Buffer.from(pythonJsonDumpsCompact(fields), "utf8").toString("base64")
  }
}

const NullableString = Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null })
const CinderDate = Schema.NullOr(Schema.DateFromString)

/** The fields of an exported record that a restore needs; the rest are ignored. */
const ImportedFields = Schema.Struct({
  id: Schema.String,
  volume_id: Schema.String,
  parent_id: NullableString,
  container: NullableString,
  service_metadata: NullableString,
  status: Schema.optionalWith(Schema.NullOr(Schema.String), { default: () => null }),
  size: Schema.optionalWith(Schema.NullOr(Schema.Number), { default: () => null }),
  object_count: Schema.optionalWith(Schema.NullOr(Schema.Number), { default: () => null }),
  display_name: NullableString,
  display_description: NullableString,
  availability_zone: NullableString,
  service: NullableString,
  created_at: Schema.optionalWith(CinderDate, { default: () => null }),
  driver_info: Schema.optionalWith(Schema.NullOr(Schema.Unknown), { default: () => null })
})

/**
 * Decodes a `backup_url` into a record in status `available` (Cinder imports
 * only backups that were available when exported).
 */
export const importRecord = (backupService: string, backupUrl: string): Effect.Effect<BackupRecord, InvalidRequest> =>
  Effect.gen(function* () {
    const invalid = (reason: string) => new InvalidRequest({ reason: `cannot import backup record: ${reason}` })
    const json = yield* Effect.try({
      try: () => JSON.parse(Buffer.from(backupUrl, "base64").toString("utf8")) as unknown,
      catch: () => invalid("backup_url is not base64 of JSON")
    })
    // Decoding and describing a value nested thousands deep recurses past the stack: a refusal, not a crash.
    const fields = yield* Effect.try({
      try: () => Schema.decodeUnknownEither(ImportedFields)(json).pipe(Either.mapLeft((e) => ParseResult.TreeFormatter.formatErrorSync(e))),
      catch: () => invalid("backup_url nests too deep")
    }).pipe(Effect.flatMap(Either.mapLeft(invalid)))
    if (fields.container === null || fields.service_metadata === null) {
      return yield* invalid(`backup ${fields.id} has no container or object prefix`)
    }
    const status = fields.status ?? "available"
    if (!Schema.is(BackupStatus)(status) || status !== "available") {
      return yield* invalid(`backup ${fields.id} was exported in status ${status}; only available backups can be imported`)
    }
    const info = fields.driver_info as { volume_size_bytes?: unknown } | null
    const size = fields.size ?? 1
    const volumeSizeBytes = typeof info?.volume_size_bytes === "number" ? info.volume_size_bytes : size * GiB
    // What a restore will write: checked here, and again by every reader.
    if (!Number.isSafeInteger(size) || size <= 0) return yield* invalid(`backup ${fields.id} has size ${size}, not a positive number of GiB`)
    if (!Number.isSafeInteger(volumeSizeBytes) || volumeSizeBytes <= 0 || volumeSizeBytes > size * GiB) {
      return yield* invalid(`backup ${fields.id} has a volume size of ${volumeSizeBytes} bytes, not a positive number of bytes within its ${size} GiB`)
    }
    return {
      id: fields.id,
      volume_id: fields.volume_id,
      parent_id: fields.parent_id,
      container: fields.container,
      service_metadata: fields.service_metadata,
      status: "available",
      size,
      volume_size_bytes: volumeSizeBytes,
      object_count: fields.object_count ?? 0,
      display_name: fields.display_name,
      display_description: fields.display_description,
      created_at: fields.created_at ?? new Date(),
      updated_at: null,
      availability_zone: fields.availability_zone,
      service: fields.service ?? backupService,
      fail_reason: null,
      lease_expires_at: null
    } satisfies BackupRecord
  })
