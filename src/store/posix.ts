/**
 * Posix ObjectStore: Cinder's PosixBackupDriver layout under a root
 * directory (`backup_posix_path`). Containers are relative directories
 * (default `id[0:2]/id[2:4]/id`, mode 0770), objects are files (mode 0660).
 * Writes go to a hidden temp file, are fsynced, then renamed into place, so a
 * reader never sees half an object and a crash leaves no partial object.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Exit, Layer } from "effect"
import { randomBytes } from "node:crypto"
import { join } from "node:path"
import { ContainerNotFound, InvalidObjectName, ObjectNotFound, StoreError, StoreUnavailable } from "./errors.js"
import { make, ObjectStore, utcStamp } from "./ObjectStore.js"

export interface PosixStoreOptions {
  /** Cinder's backup_posix_path */
  readonly root: string
  /** false refuses to create missing containers */
  readonly createContainers?: boolean
  /** backup_file_size; Cinder's default is 1999994880 */
  readonly chunkSize?: number
  readonly shaBlockSize?: number
  /** backup_container: a fixed container for every backup */
  readonly container?: string
}

const TEMP_PREFIX = ".chunked-backup-tmp-"
const MAX_SEGMENT_BYTES = 255

const classify =
  (operation: string, container: string, object?: string) =>
  (error: PlatformError): StoreError | StoreUnavailable => {
    const fields = { operation, container, reason: error.message, ...(object === undefined ? {} : { object }) }
    const transient = error._tag === "SystemError" && ["Busy", "TimedOut", "WouldBlock"].includes(error.reason)
    return transient ? new StoreUnavailable(fields) : new StoreError(fields)
  }

const isNotFound = (error: PlatformError) => error._tag === "SystemError" && error.reason === "NotFound"

/** Why `object` cannot be a posix object's file name (one path segment), if it cannot. */
const segmentProblem = (object: string): string | undefined =>
  object.includes("/")
    ? "posix object names cannot contain '/'"
    : Buffer.byteLength(object) > MAX_SEGMENT_BYTES
      ? `is longer than ${MAX_SEGMENT_BYTES} bytes`
      : undefined

const checkObjectSegment = (object: string) => {
  const reason = segmentProblem(object)
  return reason === undefined ? Effect.void : Effect.fail(new InvalidObjectName({ name: object, reason }))
}

export const makePosix = (options: PosixStoreOptions) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dirOf = (container: string) => join(options.root, container)
    const pathOf = (container: string, object: string) => join(options.root, container, object)

    const mustExist = (container: string) =>
      fs.exists(dirOf(container)).pipe(
        Effect.mapError(classify("stat", container)),
        Effect.filterOrFail(
          (exists) => exists,
          () => new ContainerNotFound({ container })
        )
      )

    // Durability of the rename itself: fsync the directory entry.
    const syncDirectory = (dir: string) =>
      Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (handle) => handle.sync))

    const writeAtomically = (container: string, object: string, bytes: Uint8Array) => {
      const target = pathOf(container, object)
      // Named after the object, so leftovers of a killed process can be found by prefix.
      const temp = join(dirOf(container), `${TEMP_PREFIX}${object}`.slice(0, MAX_SEGMENT_BYTES - 17) + "." + randomBytes(8).toString("hex"))
      const write = Effect.scoped(
        Effect.gen(function* () {
          const file = yield* fs.open(temp, { flag: "wx", mode: 0o660 })
          if (bytes.length > 0) yield* file.writeAll(bytes)
          yield* file.sync
        })
      ).pipe(
        Effect.zipRight(fs.chmod(temp, 0o660)),
        Effect.zipRight(fs.rename(temp, target)),
        Effect.zipRight(syncDirectory(dirOf(container)))
      )
      return write.pipe(
        Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.ignore(fs.remove(temp)))),
        Effect.mapError((error) =>
          isNotFound(error) ? new ContainerNotFound({ container }) : classify("write", container, object)(error)
        )
      )
    }

    return make({
      kind: "posix",
      defaults: {
        chunkSize: options.chunkSize ?? 61035 * 32768,
        shaBlockSize: options.shaBlockSize ?? 32768,
        service: "cinder.backup.drivers.posix.PosixBackupDriver",
        // Enough objects in flight to keep every codec worker busy while the volume is read.
        concurrency: 4
      },
      containerFor: (backup) =>
        backup.container ?? options.container ?? join(backup.id.slice(0, 2), backup.id.slice(2, 4), backup.id),
      objectPrefix: (backup, now) => `volume_${backup.volume_id}_${utcStamp(now)}_backup_${backup.id}`,
      extraMetadata: () => undefined,
      ensureContainer: (container) =>
        Effect.gen(function* () {
          const dir = dirOf(container)
          if (yield* fs.exists(dir)) return
          if (options.createContainers === false) return yield* new ContainerNotFound({ container })
          yield* fs.makeDirectory(dir, { recursive: true })
          yield* fs.chmod(dir, 0o770)
        }).pipe(Effect.catchTag("BadArgument", "SystemError", (e) => Effect.fail(classify("create", container)(e)))),
      list: (container, prefix) =>
        fs.readDirectory(dirOf(container)).pipe(
          Effect.map((names) => names.filter((name) => name.startsWith(prefix) && !name.startsWith(TEMP_PREFIX)).sort()),
          Effect.mapError((error) =>
            isNotFound(error) ? new ContainerNotFound({ container }) : classify("list", container)(error)
          )
        ),
      put: (container, object, bytes) =>
        Effect.zipRight(checkObjectSegment(object), writeAtomically(container, object, bytes)),
      get: (container, object) =>
        Effect.zipRight(
          checkObjectSegment(object),
          fs.readFile(pathOf(container, object)).pipe(
            Effect.catchIf(isNotFound, () =>
              Effect.flatMap(mustExist(container), () => Effect.fail(new ObjectNotFound({ container, object })))
            ),
            Effect.mapError((error) => ("_tag" in error && (error._tag === "SystemError" || error._tag === "BadArgument") ? classify("read", container, object)(error) : error))
          )
        ),
      localPath: (container, object) => (segmentProblem(object) === undefined ? pathOf(container, object) : undefined),
      removeLeftovers: (container, prefix) =>
        fs.readDirectory(dirOf(container)).pipe(
          Effect.map((names) => names.filter((name) => name.startsWith(TEMP_PREFIX + prefix))),
          Effect.tap((names) => Effect.forEach(names, (name) => Effect.ignore(fs.remove(join(dirOf(container), name))), { discard: true })),
          Effect.map((names) => names.length),
          Effect.catchIf(isNotFound, () => Effect.succeed(0)),
          Effect.mapError(classify("list", container))
        ),
      delete: (container, object) =>
        Effect.zipRight(
          checkObjectSegment(object),
          fs.remove(pathOf(container, object)).pipe(
            Effect.catchIf(isNotFound, () => Effect.void),
            Effect.mapError(classify("delete", container, object))
          )
        )
    })
  })

/** The posix layer; needs a FileSystem (NodeFileSystem.layer in Node). */
export const layerPosix = (options: PosixStoreOptions): Layer.Layer<ObjectStore, never, FileSystem.FileSystem> =>
  Layer.effect(ObjectStore, makePosix(options))
