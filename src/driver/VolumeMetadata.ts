/**
 * VolumeMetadata: Cinder's BackupMetadataAPI, seen from the driver. A backup
 * stores what `get` returns as `volume_meta`; a restore hands each backup's
 * `volume_meta` to `put`. Optional: without it, volume_meta is null and
 * restored metadata is only checked.
 */
import { Context, Effect } from "effect"
import { VolumeMetadataError } from "../domain/errors.js"

/** Cinder's volume metadata API, optional: a backup saves the volume's metadata and a restore hands it back. */
export interface VolumeMetadata {
  readonly get: (volumeId: string) => Effect.Effect<string | null>
  readonly put: (volumeId: string, volumeMeta: string) => Effect.Effect<void, VolumeMetadataError>
}

/** The VolumeMetadata service's tag. */
export const VolumeMetadata = Context.GenericTag<VolumeMetadata>("chunked-backup/VolumeMetadata")

/** Cinder restores volume metadata of versions 1 and 2 only. */
export const checkVolumeMeta = (backupId: string, volumeMeta: string): Effect.Effect<void, VolumeMetadataError> =>
  Effect.try({
    try: () => JSON.parse(volumeMeta) as { version?: unknown },
    catch: () => new VolumeMetadataError({ backupId, reason: "volume_meta is not JSON" })
  }).pipe(
    Effect.filterOrFail(
      (meta) => typeof meta === "object" && meta !== null && (meta.version === 1 || meta.version === 2),
      (meta) =>
        new VolumeMetadataError({
          backupId,
          reason: `unsupported volume metadata version ${JSON.stringify((meta as { version?: unknown } | null)?.version)}`
        })
    ),
    Effect.asVoid
  )
