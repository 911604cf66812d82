/**
 * Posix ObjectStore: Cinder's PosixBackupDriver layout under a root
 * directory (`backup_posix_path`). Containers are relative directories
 * (default `id[0:2]/id[2:4]/id`, mode 0770), objects are files (mode 0660).
 * Writes go to a hidden temp file, are fsynced, then renamed into place, so a
 * reader never sees half an object and a crash leaves no partial object.
 * Nothing is read or written outside the root: objects are opened without
 * following links and must be regular files, and a container whose path
 * leaves the root through a link is refused.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import { constants, realpathSync, type Stats } from "node:fs"
import { type FileHandle, open, readdir, realpath, rename, rm, rmdir } from "node:fs/promises"
import { dirname, join } from "node:path"
import { sharedDirectorySyncs } from "./directorySync.js"
import { ContainerNotFound, InvalidObjectName, ObjectNotFound, StoreError, StoreUnavailable } from "./errors.js"
import { make, ObjectStore, utcStamp } from "./ObjectStore.js"

/** Settings of the posix store (Cinder's PosixBackupDriver): a directory tree on a local or mounted file system. */
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

/** What a temporary file of an object being written starts with, before the object's name. */
export const TEMP_PREFIX = ".chunked-backup-tmp-"
/** An object is written at most this many bytes per write, so an interruption waits for no more. */
const WRITE_PIECE = 8 * 1024 * 1024
const MAX_SEGMENT_BYTES = 255

/** A full filesystem or quota said first: the errno alone reads like a bug. */
const explained = (message: string) =>
  /\b(ENOSPC|EDQUOT)\b/.test(message) ? `the store's filesystem is full (${message})` : message

const classify =
  (operation: string, container: string, object?: string) =>
  (error: PlatformError): StoreError | StoreUnavailable => {
    const fields = { operation, container, reason: explained(error.message), ...(object === undefined ? {} : { object }) }
    const transient = error._tag === "SystemError" && ["Busy", "TimedOut", "WouldBlock"].includes(error.reason)
    return transient ? new StoreUnavailable(fields) : new StoreError(fields)
  }

const isNotFound = (error: PlatformError) => error._tag === "SystemError" && error.reason === "NotFound"

const TRANSIENT_ERRNOS = ["EBUSY", "ETIMEDOUT", "EAGAIN", "EWOULDBLOCK"]

/** `classify` for node:fs's own errors (the reads that bypass FileSystem). */
const classifyErrno =
  (operation: string, container: string, object?: string) =>
  (error: NodeJS.ErrnoException): StoreError | StoreUnavailable => {
    const fields = { operation, container, reason: explained(error.message), ...(object === undefined ? {} : { object }) }
    return TRANSIENT_ERRNOS.includes(error.code ?? "") ? new StoreUnavailable(fields) : new StoreError(fields)
  }

/** Whether `real` is `realRoot` itself or below it (both resolved). */
const isWithin = (realRoot: string, real: string) =>
  real === realRoot || real.startsWith(realRoot.endsWith("/") ? realRoot : `${realRoot}/`)

const kindOf = (stat: Stats) =>
  stat.isDirectory() ? "a directory" : stat.isFIFO() ? "a FIFO" : stat.isSocket() ? "a socket" : "a device or special file"

const notRegularFile = (container: string, object: string, what: string) =>
  new StoreError({ operation: "read", container, object, reason: `it is ${what}, not a regular file (links are not followed)` })

// O_NOFOLLOW: a link as the last component fails with ELOOP instead of being
// followed; O_NONBLOCK: a planted FIFO cannot hang the open.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK

/**
 * Reads of at most this many bytes. FileHandle.readFile reads 512 KiB at a
 * time, each a trip through the thread pool and the event loop: 34 of them
 * for the 17 MB sha256 file of an 8 GiB volume, which an incremental reads
 * first, and 100 for each 50 MiB object of a restore.
 */
const READ_PART = 64 * 1024 * 1024
/** What readFile reads at a time. */
const READ_FILE_PART = 512 * 1024

/** The file's bytes, `size` of them expected: fewer if it has shrunk, all of them if it has grown. */
export const readWhole = async (handle: FileHandle, size: number, signal: AbortSignal): Promise<Uint8Array> => {
  let bytes = Buffer.allocUnsafeSlow(size)
  let filled = 0
  while (true) {
    if (signal.aborted) throw signal.reason
    if (filled === bytes.length) {
      // All that was expected: a read of one byte more tells whether the file has grown meanwhile.
      const probe = Buffer.allocUnsafe(1)
      if ((await handle.read(probe, 0, 1, null)).bytesRead === 0) return bytes
      bytes = Buffer.concat([bytes, probe], 2 * (filled + 1))
      filled += 1
      continue
    }
    const { bytesRead } = await handle.read(bytes, filled, Math.min(READ_PART, bytes.length - filled), null)
    if (bytesRead === 0) return bytes.subarray(0, filled)
    filled += bytesRead
  }
}

/** The bytes of the regular file at `path`, or what else it is. */
const readRegularFile = async (path: string, signal: AbortSignal): Promise<Uint8Array | string> => {
  const handle = await open(path, READ_FLAGS)
  try {
    const stat = await handle.stat()
    // readFile takes a small object in one read (and no second to find the end): kept for those.
    return !stat.isFile() ? kindOf(stat) : stat.size <= READ_FILE_PART ? await handle.readFile({ signal }) : await readWhole(handle, stat.size, signal)
  } finally {
    await handle.close()
  }
}

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

/** How deep below the root `containers` looks: the default container is 3 levels down. */
const MAX_CONTAINER_DEPTH = 16

/**
 * The directories under `root` (relative, sorted) that hold a `_metadata`
 * file; links are not followed, so the walk stays inside the root.
 */
const containersUnder = async (root: string): Promise<Array<string>> => {
  const found: Array<string> = []
  const walk = async (relative: string, depth: number): Promise<void> => {
    const entries = await readdir(join(root, relative), { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT" && relative === "") return []
      throw error
    })
    if (relative !== "" && entries.some((entry) => entry.isFile() && entry.name.endsWith("_metadata"))) found.push(relative)
    if (depth === MAX_CONTAINER_DEPTH) return
    for (const entry of entries) {
      if (entry.isDirectory()) await walk(relative === "" ? entry.name : `${relative}/${entry.name}`, depth + 1)
    }
  }
  await walk("", 0)
  return found.sort()
}

/** A posix store under `options.root`: objects are files, written to a temp file and renamed into place. */
export const makePosix = (options: PosixStoreOptions) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dirOf = (container: string) => join(options.root, container)
    const pathOf = (container: string, object: string) => join(options.root, container, object)

    /**
     * The resolved path, or undefined when nothing is there. node:fs's
     * promise realpath is libuv's realpath(3): FileSystem.realPath is the JS
     * one, an lstat per component, which cost a backup of many objects
     * more than their writes.
     */
    const realPathIfAny = (operation: string, container: string) => (path: string) =>
      Effect.tryPromise({ try: () => realpath(path), catch: (error) => error as NodeJS.ErrnoException }).pipe(
        Effect.map((real): string | undefined => real),
        Effect.catchAll((error) => (error.code === "ENOENT" ? Effect.succeed(undefined) : Effect.fail(classifyErrno(operation, container)(error))))
      )

    /**
     * Fails unless the deepest existing directory on `container`'s path
     * resolves inside the root (which may itself be a link): a planted link
     * of the container, or of a parent such as `ab/`, must not lead reads or
     * writes out of it. Missing parts are checked through their nearest
     * existing parent, so ensureContainer cannot create through a link.
     * Time of check to time of use: a directory swapped for a link between
     * this check and the open, mkdir or rename that follows is not caught;
     * closing that needs openat2(RESOLVE_BENEATH) or an fd-relative walk,
     * which node:fs does not offer. The last component of an object is safe
     * regardless: reads use O_NOFOLLOW, writes O_EXCL and rename.
     */
    // The root resolved once it exists: should it be moved to another place later, containers there resolve outside it and are refused.
    let resolvedRoot: string | undefined
    const checkInsideRoot = (operation: string, container: string) =>
      Effect.gen(function* () {
        const realRoot = resolvedRoot ?? (resolvedRoot = yield* realPathIfAny(operation, container)(options.root))
        // No root yet: nothing below it can be a link.
        if (realRoot === undefined) return
        const segments = container.split("/")
        for (let depth = segments.length; depth > 0; depth--) {
          const path = join(options.root, ...segments.slice(0, depth))
          const real = yield* realPathIfAny(operation, container)(path)
          if (real === undefined) continue
          if (isWithin(realRoot, real)) return
          return yield* new StoreError({ operation, container, reason: `${path} resolves to ${real}, outside the store root ${realRoot}` })
        }
      })

    /** localPath's synchronous check: the container exists and resolves inside the root. */
    const isInsideRootSync = (container: string) => {
      try {
        return isWithin(realpathSync.native(options.root), realpathSync.native(dirOf(container)))
      } catch {
        return false
      }
    }

    const readObject = (container: string, object: string) =>
      Effect.tryPromise({
        try: (signal) => readRegularFile(pathOf(container, object), signal),
        catch: (error) => error as NodeJS.ErrnoException
      }).pipe(
        Effect.catchAll((error) =>
          error.code === "ENOENT"
            ? Effect.flatMap(mustExist(container), () => Effect.fail(new ObjectNotFound({ container, object })))
            : Effect.fail(error.code === "ELOOP" ? notRegularFile(container, object, "a symbolic link") : classifyErrno("read", container, object)(error))
        ),
        Effect.flatMap((result) => (typeof result === "string" ? Effect.fail(notRegularFile(container, object, result)) : Effect.succeed(result)))
      )

    const mustExist = (container: string) =>
      fs.exists(dirOf(container)).pipe(
        Effect.mapError(classify("stat", container)),
        Effect.filterOrFail(
          (exists) => exists,
          () => new ContainerNotFound({ container })
        )
      )

    /**
     * The directories a deleted backup leaves, deepest first, when `container`
     * is the default one of the backup with `prefix` (`id[0:2]/id[2:4]/id`,
     * one per backup): the container and its parents below the root. Any
     * other container may be shared or made by hand, and stays.
     */
    const ownDirectories = (container: string, prefix: string): Array<string> => {
      const id = container.split("/").at(-1)!
      const own = container === join(id.slice(0, 2), id.slice(2, 4), id) && prefix.endsWith(`_backup_${id}`)
      if (!own || options.createContainers === false) return []
      const dirs: Array<string> = []
      for (let dir = container; dir !== "."; dir = dirname(dir)) dirs.push(dir)
      return dirs
    }

    /**
     * rmdir each while it is empty, stopping at the first that is not (or
     * cannot go): rmdir refuses a non-empty directory atomically, so an `ab/`
     * parent that a concurrent backup has just created a container in stays.
     */
    const removeEmptyDirectories = (dirs: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        for (const dir of dirs) {
          const gone = yield* Effect.tryPromise({
            try: () => rmdir(join(options.root, dir)),
            catch: (error) => error as NodeJS.ErrnoException
          }).pipe(
            Effect.as(true),
            Effect.catchAll((error) => Effect.succeed(error.code === "ENOENT"))
          )
          if (!gone) return
        }
      })

    const syncDirectory = sharedDirectorySyncs()

    /**
     * One object, written whole: a temp file (O_EXCL), its bytes, mode 0660
     * whatever the umask, fsync, rename into place, fsync of the directory
     * (the rename's own durability). node:fs's promises in one Effect: as a
     * dozen FileSystem Effects, a small object's put cost more main-thread
     * time than its writes. An interruption stops it between steps and waits
     * for the step in flight, so no write lands after the put has ended.
     */
    const writeAtomically = (container: string, object: string, bytes: Uint8Array) => {
      const dir = dirOf(container)
      const target = pathOf(container, object)
      // Named after the object, so leftovers of a killed process can be found by prefix.
      const temp = join(dir, `${TEMP_PREFIX}${object}`.slice(0, MAX_SEGMENT_BYTES - 17) + "." + randomBytes(8).toString("hex"))
      const write = async (signal: AbortSignal) => {
        let renamed = false
        try {
          const file = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o660)
          try {
            for (let at = 0; at < bytes.length; ) {
              signal.throwIfAborted()
              at += (await file.write(bytes, at, Math.min(bytes.length - at, WRITE_PIECE))).bytesWritten
            }
            await file.chmod(0o660)
            signal.throwIfAborted()
            await file.sync()
          } finally {
            await file.close()
          }
          signal.throwIfAborted()
          await rename(temp, target)
          renamed = true
        } catch (error) {
          if (!renamed) await rm(temp, { force: true }).catch(() => undefined)
          throw error
        }
        await syncDirectory(dir)
      }
      return Effect.suspend(() => {
        const controller = new AbortController()
        const running = write(controller.signal)
        return Effect.tryPromise({ try: () => running, catch: (error) => error as NodeJS.ErrnoException }).pipe(
          Effect.onInterrupt(() => {
            controller.abort()
            return Effect.promise(() => running.catch(() => undefined))
          }),
          Effect.mapError((error) => (error.code === "ENOENT" ? new ContainerNotFound({ container }) : classifyErrno("write", container, object)(error)))
        )
      })
    }

    const listNames = (container: string, prefix: string) =>
      Effect.zipRight(
        checkInsideRoot("list", container),
        fs.readDirectory(dirOf(container)).pipe(
          Effect.map((names) => names.filter((name) => name.startsWith(prefix) && !name.startsWith(TEMP_PREFIX)).sort()),
          Effect.mapError((error) => (isNotFound(error) ? new ContainerNotFound({ container }) : classify("list", container)(error)))
        )
      )

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
          yield* checkInsideRoot("create", container)
          const dir = dirOf(container)
          if (yield* fs.exists(dir)) return
          if (options.createContainers === false) return yield* new ContainerNotFound({ container })
          // Once more if a parent vanished meanwhile: deleting a backup removes an `ab/` left empty.
          yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.retry({ times: 1, while: isNotFound }))
          // Again, before the chmod: what was created must be where it was meant to be.
          yield* checkInsideRoot("create", container)
          yield* fs.chmod(dir, 0o770)
        }).pipe(Effect.catchTag("BadArgument", "SystemError", (e) => Effect.fail(classify("create", container)(e)))),
      containers:
        options.container !== undefined
          ? Effect.succeed([options.container])
          : Effect.tryPromise({
              try: () => containersUnder(options.root),
              catch: (error) => new StoreError({ operation: "list", container: ".", reason: `walking ${options.root}: ${(error as Error).message}` })
            }),
      list: listNames,
      // A file deleted between the listing and its stat is left out, as a later listing would.
      listSizes: (container, prefix) =>
        Effect.flatMap(listNames(container, prefix), (names) =>
          Effect.forEach(names, (name) =>
            fs.stat(pathOf(container, name)).pipe(
              Effect.map((info) => [{ name, bytes: Number(info.size) }]),
              Effect.catchIf(isNotFound, () => Effect.succeed([])),
              Effect.mapError(classify("list", container, name))
            ),
            { concurrency: 16 }
          ).pipe(Effect.map((sized) => sized.flat()))
        ),
      put: (container, object, bytes) =>
        checkObjectSegment(object).pipe(
          Effect.zipRight(checkInsideRoot("write", container)),
          Effect.zipRight(writeAtomically(container, object, bytes))
        ),
      get: (container, object) =>
        checkObjectSegment(object).pipe(Effect.zipRight(checkInsideRoot("read", container)), Effect.zipRight(readObject(container, object))),
      // Undefined unless the container is inside the root: the restore then reads through `get`, whose error is typed.
      localPath: (container, object) =>
        segmentProblem(object) === undefined && isInsideRootSync(container) ? pathOf(container, object) : undefined,
      removeLeftovers: (container, prefix) =>
        Effect.zipRight(
          checkInsideRoot("list", container),
          fs.readDirectory(dirOf(container)).pipe(
            Effect.map((names) => names.filter((name) => name.startsWith(TEMP_PREFIX + prefix))),
            Effect.tap((names) => Effect.forEach(names, (name) => Effect.ignore(fs.remove(join(dirOf(container), name))), { discard: true })),
            Effect.map((names) => names.length),
            Effect.catchIf(isNotFound, () => Effect.succeed(0)),
            Effect.mapError(classify("list", container)),
            Effect.tap(() => removeEmptyDirectories(ownDirectories(container, prefix)))
          )
        ),
      delete: (container, object) =>
        checkObjectSegment(object).pipe(
          Effect.zipRight(checkInsideRoot("delete", container)),
          Effect.zipRight(
            fs.remove(pathOf(container, object)).pipe(
              Effect.catchIf(isNotFound, () => Effect.void),
              Effect.mapError(classify("delete", container, object))
            )
          )
        )
    })
  })

/** The posix layer; needs a FileSystem (NodeFileSystem.layer in Node). */
export const layerPosix = (options: PosixStoreOptions): Layer.Layer<ObjectStore, never, FileSystem.FileSystem> =>
  Layer.effect(ObjectStore, makePosix(options))
