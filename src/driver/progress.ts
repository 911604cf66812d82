/**
 * Progress as events. Like Cinder's `createprogress` notifications they are
 * sent every N objects and on a timer, and once at 100 % at the end; a CLI
 * renders them, a library user subscribes with `onProgress`.
 */
import { Duration, Effect, Queue, Schedule, Stream } from "effect"
import { currentWorkInFlight, WorkInFlight } from "../codec/pool.js"

/** One progress report of a backup, restore or verify. */
export interface ProgressEvent {
  readonly operation: "backup" | "restore" | "verify" | "copy"
  readonly backupId: string
  readonly bytesDone: number
  readonly bytesTotal: number
  readonly objects: number
  readonly percent: number
  readonly done: boolean
  /** seconds since the operation started */
  readonly seconds: number
  /** backup: bytes of the pieces written (an incremental's changed blocks; all for a full backup) */
  readonly bytesChanged?: number
  /** backup: bytes stored, after compression */
  readonly bytesStored?: number
  /** backup: bytes read from the volume (less than bytesDone where holes or, with a dirty bitmap, unchanged blocks were not read) */
  readonly bytesRead?: number
}

/** How an operation reports progress: a callback, and Cinder's every-N-objects and timer rhythm. */
export interface ProgressOptions {
  readonly onProgress?: (event: ProgressEvent) => Effect.Effect<void>
  /** Cinder's backup_object_number_per_notification (default 10). */
  readonly progressEveryObjects?: number
  /** Cinder's backup_timer_interval (default 120 s). */
  readonly progressInterval?: Duration.DurationInput
}

/**
 * A progress counter for one operation. The timer runs in the caller's
 * scope, so it stops with the operation. `bytesDone` counts finished steps
 * and the part of the codec jobs under way that is done (a bzip2 object
 * moves the bar as it compresses); it never goes back.
 */
export const makeProgress = (
  operation: ProgressEvent["operation"],
  backupId: string,
  bytesTotal: number,
  options: ProgressOptions
) =>
  Effect.gen(function* () {
    const emit = options.onProgress ?? (() => Effect.void)
    const every = Math.max(1, options.progressEveryObjects ?? 10)
    let bytesDone = 0
    let objects = 0
    let bytesChanged = 0
    let bytesStored = 0
    let bytesRead = 0
    const started = Date.now()
    // The codec jobs this operation's fibers (forked from here on) start count in `inFlight`.
    const inFlight = new WorkInFlight()
    yield* Effect.locallyScoped(currentWorkInFlight, inFlight)
    let shown = 0
    const event = (done: boolean): ProgressEvent => {
      // A job's count leaves `inFlight` when it ends, shortly before its step is counted: keep the larger.
      shown = done ? bytesTotal : Math.max(shown, Math.min(bytesTotal, bytesDone + inFlight.bytes()))
      return {
        operation,
        backupId,
        bytesDone: shown,
        bytesTotal,
        objects,
        percent: done || bytesTotal === 0 ? 100 : Math.min(100, (100 * shown) / bytesTotal),
        done,
        seconds: (Date.now() - started) / 1000,
        ...(operation === "backup" ? { bytesChanged, bytesStored, bytesRead } : {})
      }
    }
    // Events go out one at a time, and none after the final one: the timer may
    // fire while `finish` runs, or in the moment before the operation's scope ends.
    const lock = yield* Effect.makeSemaphore(1)
    let finished = false
    const report = (done: boolean) =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          if (finished) return Effect.void
          finished = done
          return emit(event(done))
        })
      )
    if (options.onProgress !== undefined) {
      const interval = Duration.decode(options.progressInterval ?? Duration.seconds(120))
      yield* report(false).pipe(
        Effect.repeat(Schedule.spaced(interval)),
        Effect.delay(interval),
        Effect.forkScoped
      )
    }
    return {
      /** Counts a finished step: `bytes` volume bytes in `count` objects. */
      advance: (bytes: number, count = 1) =>
        Effect.suspend(() => {
          const before = Math.floor(objects / every)
          bytesDone += bytes
          objects += count
          // An event each time the count passes a multiple of `every`; the last step is reported by `finish`, once.
          return Math.floor(objects / every) !== before && bytesDone < bytesTotal ? report(false) : Effect.void
        }),
      /** Counts an object a backup wrote: `changed` volume bytes, `stored` bytes after compression. */
      stored: (changed: number, stored: number) =>
        Effect.sync(() => {
          bytesChanged += changed
          bytesStored += stored
        }),
      /** Counts bytes a backup read from its volume. */
      read: (bytes: number) =>
        Effect.sync(() => {
          bytesRead += bytes
        }),
      finish: report(true)
    }
  })

/**
 * An operation's progress as a Stream, for a library user who would rather
 * not write a callback: pass `options` to the operation (backup, restore,
 * verify) and run it and `events` side by side, e.g.
 *
 *   const progress = yield* progressStream()
 *   yield* Effect.all([backup(fields, path, progress.options), Stream.runForEach(progress.events, show)], { concurrency: 2 })
 *
 * `events` ends after the final (`done`) event; when the operation fails,
 * Effect.all interrupts the stream. One consumer; the rhythm is Cinder's
 * (every 10 objects and every 120 s) unless `rhythm` says otherwise.
 */
export const progressStream = (
  rhythm: Omit<ProgressOptions, "onProgress"> = {}
): Effect.Effect<{ readonly options: ProgressOptions; readonly events: Stream.Stream<ProgressEvent> }> =>
  Effect.map(Queue.unbounded<ProgressEvent>(), (queue) => ({
    options: { ...rhythm, onProgress: (event: ProgressEvent) => Queue.offer(queue, event) },
    events: Stream.fromQueue(queue).pipe(Stream.takeUntil((event) => event.done))
  }))
