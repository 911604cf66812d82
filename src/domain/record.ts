/**
 * The backup record: the catalog row for one backup, with the fields of
 * Cinder's `cinder.objects.Backup` that the chunked driver reads or writes.
 */
import { Schema } from "effect"

/** A backup's status, Cinder's: creating, available, restoring, deleting, deleted, error, error_deleting. */
export const BackupStatus = Schema.Literal(
  "creating",
  "available",
  "deleting",
  "deleted",
  "restoring",
  "error",
  "error_deleting"
)
/** A backup's status, Cinder's: creating, available, restoring, deleting, deleted, error, error_deleting. */
export type BackupStatus = typeof BackupStatus.Type

/** A backup's catalog record: Cinder's `backups` row, with the fields the chunked driver reads and writes. */
export const BackupRecord = Schema.Struct({
  id: Schema.String,
  volume_id: Schema.String,
  /** null for a full backup */
  parent_id: Schema.NullOr(Schema.String),
  /** the store namespace; null until the backup chose one */
  container: Schema.NullOr(Schema.String),
  /** Cinder keeps the object-name prefix here */
  service_metadata: Schema.NullOr(Schema.String),
  status: BackupStatus,
  /** the volume's size in GiB, as Cinder records it */
  size: Schema.Number,
  /** the volume's exact size in bytes (Cinder volumes are whole GiB; ours need not be) */
  volume_size_bytes: Schema.Number,
  object_count: Schema.Number,
  display_name: Schema.NullOr(Schema.String),
  display_description: Schema.NullOr(Schema.String),
  /** UTC, microsecond precision like Cinder's DateTimeField */
  created_at: Schema.DateFromSelf,
  updated_at: Schema.NullOr(Schema.DateFromSelf),
  availability_zone: Schema.NullOr(Schema.String),
  /** the driver that wrote it, e.g. cinder.backup.drivers.posix.PosixBackupDriver */
  service: Schema.NullOr(Schema.String),
  fail_reason: Schema.NullOr(Schema.String),
  /**
   * While a backup, restore or delete runs, the process renews this lease;
   * a record in progress whose lease ran out belongs to a process that died.
   */
  lease_expires_at: Schema.NullOr(Schema.DateFromSelf)
})
/** A backup's catalog record: Cinder's `backups` row, with the fields the chunked driver reads and writes. */
export type BackupRecord = typeof BackupRecord.Type

/** The fields a new record needs; the rest get Cinder's defaults. */
export type NewBackup = Pick<BackupRecord, "id" | "volume_id" | "volume_size_bytes"> &
  Partial<Omit<BackupRecord, "id" | "volume_id" | "volume_size_bytes">>

const GiB = 1024 ** 3

/** A volume's size as Cinder records it: whole GiB, at least 1. */
export const sizeInGiB = (volumeSizeBytes: number): number => Math.max(1, Math.ceil(volumeSizeBytes / GiB))

/** A new record in status `creating`, with Cinder's defaults for every field not given. */
export const newBackupRecord = (fields: NewBackup): BackupRecord => ({
  parent_id: null,
  container: null,
  service_metadata: null,
  status: "creating",
  size: sizeInGiB(fields.volume_size_bytes),
  object_count: 0,
  display_name: null,
  display_description: null,
  created_at: new Date(),
  updated_at: null,
  availability_zone: null,
  service: null,
  fail_reason: null,
  lease_expires_at: null,
  ...fields
})
