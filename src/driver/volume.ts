/**
 * Volumes by path through @effect/platform's FileSystem: a regular file or
 * a block device, its size, and opening one as a restore target (written at
 * offsets). Reading a volume is volumeSource.ts's.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option } from "effect"
import { VolumeError } from "../domain/errors.js"

/** What went wrong, in plain words: the errno's meaning rather than the FileSystem call that met it. */
const plainReason = (error: PlatformError): string => {
  if (error._tag !== "SystemError") return error.message
  const code = (error.cause as { code?: string } | undefined)?.code
  if (code === "EISDIR") return "is a directory, not a file or block device"
  if (code === "ENOSPC") return "no space left on the device"
  switch (error.reason) {
    case "NotFound":
      return "does not exist"
    case "PermissionDenied":
      return "permission denied"
    case "Busy":
      return "is busy (in use elsewhere)"
    default:
      return error.description ?? error.message
  }
}

/** The errno code behind a platform error ("ENOENT", ...), when there is one. */
const errnoOf = (error: PlatformError): string | undefined => {
  const code = error._tag === "SystemError" ? (error.cause as { code?: unknown } | undefined)?.code : undefined
  return typeof code === "string" ? code : undefined
}

export const volumeError = (path: string) => (error: PlatformError) => {
  const code = errnoOf(error)
  return new VolumeError({ path, reason: plainReason(error), cause: error, ...(code === undefined ? {} : { code }) })
}

/** Linux dev_t to "major:minor", for /sys/dev/block lookups. */
const deviceNumber = (rdev: number) => {
  const major = Math.floor(rdev / 256) & 0xfff
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00)
  return `${major}:${minor}`
}

export interface VolumeInfo {
  readonly size: number
  readonly isBlockDevice: boolean
}

/** Size in bytes: stat for files; the kernel's sector count for block devices (stat says 0). */
export const volumeInfo = (path: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const info = yield* fs.stat(path)
    if (info.type === "File") return { size: Number(info.size), isBlockDevice: false }
    if (info.type === "BlockDevice" && Option.isSome(info.rdev)) {
      const sectors = yield* fs.readFileString(`/sys/dev/block/${deviceNumber(info.rdev.value)}/size`)
      return { size: Number(sectors.trim()) * 512, isBlockDevice: true }
    }
    return yield* new VolumeError({ path, reason: `is a ${info.type}, not a regular file or block device` })
  }).pipe(Effect.catchTag("SystemError", "BadArgument", (e) => Effect.fail(volumeError(path)(e))))

/**
 * Opens a restore target, creating a missing file. When `fresh` (a new,
 * zeroed volume) and the target is a regular file, it is cut to `size` so
 * unwritten ranges stay holes. Nothing is written past `size`: an existing
 * larger target keeps its bytes beyond the volume's end, as under Cinder; a
 * block device too small for the volume is refused before any write.
 */
export const openTarget = (path: string, size: number, fresh: boolean) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const exists = yield* fs.exists(path)
    const file = yield* fs.open(path, { flag: exists ? "r+" : "w+", mode: 0o600 })
    const info = yield* file.stat
    if (info.type === "BlockDevice") {
      const device = yield* volumeInfo(path)
      if (device.size < size) {
        return yield* new VolumeError({ path, reason: `the device holds ${device.size} bytes, less than the backup's ${size}-byte volume` })
      }
    }
    const sparse = info.type === "File" && (fresh || !exists)
    if (sparse) {
      yield* file.truncate(0)
      yield* file.truncate(size)
    }
    // Writes are positional, by file descriptor (a codec worker writes each object).
    return { fd: file.fd as number, sync: file.sync.pipe(Effect.mapError(volumeError(path))), sparse, size: Number(info.size), type: info.type }
  }).pipe(Effect.catchTag("SystemError", "BadArgument", (e) => Effect.fail(volumeError(path)(e))))
