/**
 * The backup command's volume argument: a path (a regular file or block
 * device), an NBD URI (optionally with `--dirty-bitmap`), or `-` for
 * standard input, which needs its size (`--size`) and a volume id
 * (`--volume-id`: a pipe has no path to derive one from, and incrementals
 * find their parent by it).
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Effect, Either, Option, type Scope } from "effect"
import { createHash } from "node:crypto"
import { realpathSync } from "node:fs"
import { resolve } from "node:path"
import { InvalidRequest, VolumeError } from "../domain/errors.js"
import { nbdSource } from "../driver/nbdSource.js"
import { streamSource, type VolumeSource } from "../driver/volumeSource.js"
import { isNbdUri, parseNbdUri } from "../nbd/uri.js"

/** A UUID-shaped id from a name's sha256. */
const uuidOf = (name: string) => {
  const digest = createHash("sha256").update(name).digest("hex")
  return `${digest.slice(0, 8)}-${digest.slice(8, 12)}-5${digest.slice(13, 16)}-8${digest.slice(17, 20)}-${digest.slice(20, 32)}`
}

/** A stable volume id for a path, so `--incremental` finds earlier backups of the same volume. */
const volumeIdFor = (path: string) =>
  Effect.try({
    try: () => uuidOf(`chunked-backup:${realpathSync(path)}`),
    catch: (e) => {
      const code = (e as NodeJS.ErrnoException).code
      return new VolumeError({ path, reason: code === "ENOENT" ? "does not exist" : e instanceof Error ? e.message : String(e), cause: e, ...(code === undefined ? {} : { code }) })
    }
  })

export interface VolumeArgument {
  readonly volume: string | VolumeSource
  readonly volumeId: string
}

/** What `backup <volume> [--size] [--volume-id] [--dirty-bitmap]` backs up; standard input and NBD are read within the scope. */
export const volumeArgument = (
  volume: string,
  size: Option.Option<number>,
  volumeId: Option.Option<string>,
  dirtyBitmap: Option.Option<string> = Option.none()
): Effect.Effect<VolumeArgument, InvalidRequest | VolumeError, Scope.Scope> =>
  Effect.gen(function* () {
    if (isNbdUri(volume)) {
      const address = parseNbdUri(volume)
      if (Either.isLeft(address)) return yield* new InvalidRequest({ reason: `${volume}: ${address.left}` })
      if (Option.isSome(size)) return yield* new InvalidRequest({ reason: "--size is for a backup of standard input (-) only: an NBD export's size comes from its server" })
      const source = yield* nbdSource(volume, Option.isSome(dirtyBitmap) ? { dirtyBitmap: dirtyBitmap.value } : {})
      // The URI names the volume: the same URI finds the same chain.
      return { volume: source, volumeId: Option.getOrElse(volumeId, () => uuidOf(`chunked-backup:${volume}`)) }
    }
    if (Option.isSome(dirtyBitmap)) {
      return yield* new InvalidRequest({ reason: "--dirty-bitmap needs an NBD source (nbd://… or nbd+unix://…): a dirty bitmap is qemu's, read over NBD" })
    }
    if (volume !== "-") {
      if (Option.isSome(size)) return yield* new InvalidRequest({ reason: "--size is for a backup of standard input (-) only: a file's or device's size is its own" })
      const path = resolve(volume)
      return { volume: path, volumeId: Option.isSome(volumeId) ? volumeId.value : yield* volumeIdFor(path) }
    }
    if (Option.isNone(size) || size.value <= 0) {
      return yield* new InvalidRequest({ reason: "a backup of standard input (-) needs --size BYTES, the volume's size, which goes into the record before it is read" })
    }
    if (Option.isNone(volumeId)) {
      return yield* new InvalidRequest({ reason: "a backup of standard input (-) needs --volume-id: a pipe has no path to name the volume by" })
    }
    const stdin = NodeStream.fromReadable<VolumeError>(() => process.stdin, (e) => new VolumeError({ path: "standard input", reason: String(e) }))
    return { volume: yield* streamSource(stdin, size.value, "standard input"), volumeId: volumeId.value }
  })
