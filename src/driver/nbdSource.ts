/**
 * A volume served over NBD (qemu-nbd, nbdkit, a hypervisor's export) as a
 * VolumeSource: its size from the server, its holes from the
 * `base:allocation` context, and, for a changed-block incremental, its
 * changes since the parent from a `qemu:dirty-bitmap:NAME` context.
 */
import { Effect, type Scope } from "effect"
import { VolumeError } from "../domain/errors.js"
import { connect, NBD_STATE_DIRTY, NBD_STATE_ZERO, type BlockStatusExtent, type NbdConnection } from "../nbd/client.js"
import type { NbdError } from "../nbd/errors.js"
import type { Range } from "./extents.js"
import type { VolumeSource } from "./volumeSource.js"

/** Settings of an NBD source. */
export interface NbdSourceOptions {
  /**
   * The dirty bitmap (qemu's name for it) that was started when the parent
   * backup was taken: the source then reports only the extents it marks as
   * its changes, and an incremental reads nothing else.
   */
  readonly dirtyBitmap?: string
  /** NBD requests in flight at once; default 8. */
  readonly maxInFlight?: number
}

const BASE_ALLOCATION = "base:allocation"

/** The NBD context name of a qemu dirty bitmap. */
export const dirtyBitmapContext = (name: string) => `qemu:dirty-bitmap:${name}`

const asVolumeError = (uri: string) => (error: NbdError) => new VolumeError({ path: uri, reason: error.reason, cause: error })

/** The extents whose flags pass `keep`, merged into sorted ranges. */
const rangesWhere = (extents: ReadonlyArray<BlockStatusExtent>, keep: (flags: number) => boolean): Array<Range> => {
  const ranges: Array<Range> = []
  for (const extent of extents) {
    if (!keep(extent.flags)) continue
    const last = ranges[ranges.length - 1]
    if (last !== undefined && last.end === extent.start) ranges[ranges.length - 1] = { start: last.start, end: extent.end }
    else ranges.push({ start: extent.start, end: extent.end })
  }
  return ranges
}

/** The source over an open connection. */
const sourceOf = (connection: NbdConnection, uri: string, bitmap: string | undefined): VolumeSource => {
  const { size } = connection
  const fail = asVolumeError(uri)
  const read = (offset: number, buffer: Uint8Array) => {
    const n = Math.max(0, Math.min(buffer.length, size - offset))
    return n === 0 ? Effect.succeed(0) : Effect.as(Effect.mapError(connection.read(offset, buffer.subarray(0, n)), fail), n)
  }
  const statusOf = (context: string, keep: (flags: number) => boolean) =>
    connection.blockStatus(context, 0, size).pipe(
      Effect.map((extents) => rangesWhere(extents, keep)),
      Effect.mapError(fail)
    )
  return {
    name: uri,
    size,
    read,
    // Extents flagged "reads as zeros" are holes; a hole without that flag (a backing file's data) is read.
    ...(connection.contexts.includes(BASE_ALLOCATION) ? { extents: statusOf(BASE_ALLOCATION, (flags) => (flags & NBD_STATE_ZERO) === 0) } : {}),
    ...(bitmap === undefined ? {} : { changes: statusOf(dirtyBitmapContext(bitmap), (flags) => (flags & NBD_STATE_DIRTY) !== 0) })
  }
}

/**
 * Connects to the NBD export at `uri` (`nbd://host[:port]/export`,
 * `nbd+unix:///export?socket=PATH`) for the scope. With `dirtyBitmap`, a
 * server that does not offer that bitmap is refused: a VolumeError naming it.
 */
export const nbdSource = (uri: string, options: NbdSourceOptions = {}): Effect.Effect<VolumeSource, VolumeError, Scope.Scope> =>
  Effect.gen(function* () {
    const bitmap = options.dirtyBitmap
    const contexts = [BASE_ALLOCATION, ...(bitmap === undefined ? [] : [dirtyBitmapContext(bitmap)])]
    const connection = yield* connect(uri, { contexts, ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }) }).pipe(
      Effect.mapError(asVolumeError(uri))
    )
    if (bitmap !== undefined && !connection.contexts.includes(dirtyBitmapContext(bitmap))) {
      return yield* new VolumeError({
        path: uri,
        reason: `the server offers no dirty bitmap named ${JSON.stringify(bitmap)} (qemu-nbd exports one with -B ${bitmap})`
      })
    }
    if (connection.size === 0) return yield* new VolumeError({ path: uri, reason: "the export is empty" })
    return sourceOf(connection, uri, bitmap)
  })
