/**
 * A pool of codec worker threads (lib/codec-worker.mjs). Compression and
 * md5 are CPU-bound and synchronous in Node (md5, zstd-napi), so on the main
 * thread they serialise a backup; in workers they use every core while the
 * main thread reads the volume and talks to the store.
 *
 * Data in shared memory (a chunk slot, see slots.ts) is worked on in place.
 * Other input is transferred when it is a whole buffer, else copied first,
 * so the buffer it is a view of survives.
 */
import { Effect, FiberRef } from "effect"
import { availableParallelism } from "node:os"
import { join } from "node:path"
import { Worker } from "node:worker_threads"
import { packageFile } from "./native.js"
import { isShared } from "./slots.js"

export interface CodecResult {
  /** compressed (or decompressed) bytes; the input itself when stored raw or decompressed `into` a slot */
  readonly bytes: Uint8Array
  /** md5 of the uncompressed bytes */
  readonly md5: string
  /** compress: stored raw because compression did not shrink it */
  readonly raw: boolean
}

interface Reply {
  readonly id: number
  readonly error?: string
  readonly md5?: string
  readonly bytes?: Uint8Array
  /** compress: the input came back unchanged (it did not shrink) */
  readonly raw?: boolean
  /** decompress into a slot: how many bytes were written there */
  readonly length?: number
  /** restore: each object's outcome, up to the first that failed */
  readonly outcomes?: ReadonlyArray<OutcomeReply>
  /** hash: the SHA-256 of each block, 32 bytes each */
  readonly digests?: Uint8Array
  /** compressMany: each piece's reply, in order */
  readonly pieces?: ReadonlyArray<{ readonly md5: string; readonly raw: boolean; readonly bytes?: Uint8Array }>
}

const findWorkerScript = (): string => {
  const path = packageFile(join("lib", "codec-worker.mjs"))
  if (path === undefined) throw new Error("lib/codec-worker.mjs not found")
  return path
}

interface QueuedJob {
  readonly id: number
  readonly message: Record<string, unknown>
  readonly transfer: ReadonlyArray<ArrayBuffer>
  readonly resolve: (reply: Reply) => void
  readonly tracked: Tracked | undefined
}

/** Shared data as it is; a whole buffer to transfer; a view into a larger buffer copied, so the rest survives. */
const sendable = (data: Uint8Array): Uint8Array =>
  isShared(data) || (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) ? data : data.slice()

const transferOf = (data: Uint8Array): Array<ArrayBuffer> => (isShared(data) ? [] : [data.buffer as ArrayBuffer])

/**
 * The codec work of one operation that is under way: the volume bytes its
 * running jobs have worked through so far, read from the counters the
 * workers keep in shared memory. A progress display adds them to what is
 * finished, so a 50 MiB bzip2 object moves the bar while it compresses.
 */
export class WorkInFlight {
  /** Running jobs: their worker's counter, and the most the job counts for. */
  readonly jobs = new Set<{ readonly counter: BigInt64Array; readonly weight: number }>()
  bytes(): number {
    let sum = 0
    for (const job of this.jobs) sum += Math.min(job.weight, Number(Atomics.load(job.counter, 0)))
    return sum
  }
}

/** The operation whose progress a worker job counts towards (set by makeProgress for the fibers of its operation). */
export const currentWorkInFlight: FiberRef.FiberRef<WorkInFlight | undefined> = FiberRef.unsafeMake<WorkInFlight | undefined>(undefined)

interface Tracked {
  readonly work: WorkInFlight
  /** the volume bytes the job stands for */
  readonly weight: number
}

/**
 * Jobs wait here, not in a worker's inbox: a worker gets its next job only
 * when it is idle, so big objects cannot pile up behind one worker while
 * the other runs out of small ones (a chain restore had one worker busy
 * 1.25 s and the other 0.34 s when jobs went to the least-loaded inbox).
 */
class Pool {
  private readonly script = findWorkerScript()
  private readonly idle: Array<Worker> = []
  private readonly queue: Array<QueuedJob> = []
  private readonly waiting = new Map<number, (reply: Reply) => void>()
  /** The worker each posted job runs on. */
  private readonly running = new Map<number, Worker>()
  /** Each worker's stop flag (shared memory): set, its long native work (bzip2) gives up at the next step. */
  private readonly stops = new Map<Worker, Int32Array>()
  /** Each worker's count of the volume bytes its current job has worked through (shared memory). */
  private readonly counters = new Map<Worker, BigInt64Array>()
  /** Where each posted job that counts towards an operation's progress is registered. */
  private readonly tracked = new Map<number, { readonly work: WorkInFlight; readonly entry: { readonly counter: BigInt64Array; readonly weight: number } }>()
  private nextId = 0

  constructor(size: number) {
    for (let i = 0; i < size; i++) this.idle.push(this.spawn())
  }

  private spawn(): Worker {
    const stop = new Int32Array(new SharedArrayBuffer(4))
    const done = new BigInt64Array(new SharedArrayBuffer(8))
    const worker = new Worker(this.script, { workerData: { stop, done } })
    this.stops.set(worker, stop)
    this.counters.set(worker, done)
    worker.on("message", (reply: Reply) => {
      // The reply of a job cancelled meanwhile: its worker is being terminated, not reused.
      if (!this.running.has(reply.id)) return
      const resolve = this.waiting.get(reply.id)
      this.waiting.delete(reply.id)
      this.running.delete(reply.id)
      // Before the worker's next job reuses the counter.
      this.untrack(reply.id)
      this.next(worker)
      resolve?.(reply)
    })
    // Idle workers must not keep the process alive (after `on`, which refs the port).
    worker.unref()
    return worker
  }

  private next(worker: Worker) {
    const job = this.queue.shift()
    if (job !== undefined) return this.post(worker, job)
    worker.unref()
    this.idle.push(worker)
  }

  private untrack(id: number) {
    const tracked = this.tracked.get(id)
    if (tracked === undefined) return
    tracked.work.jobs.delete(tracked.entry)
    this.tracked.delete(id)
  }

  private post(worker: Worker, job: QueuedJob) {
    this.waiting.set(job.id, job.resolve)
    this.running.set(job.id, worker)
    // The worker is idle, so nothing else writes its counter now.
    const counter = this.counters.get(worker)!
    Atomics.store(counter, 0, 0n)
    if (job.tracked !== undefined) {
      const entry = { counter, weight: job.tracked.weight }
      job.tracked.work.jobs.add(entry)
      this.tracked.set(job.id, { work: job.tracked.work, entry })
    }
    worker.ref()
    worker.postMessage({ ...job.message, id: job.id }, job.transfer as Array<ArrayBuffer>)
  }

  /**
   * Sends `message` with `data`, the buffers in `message` being sent as they
   * are (see `sendable`). `cancel` drops a job still queued; a job already
   * running is stopped by terminating its worker (a fresh one takes its
   * place), and resolves once that worker is gone, so nothing of the job
   * (a restore's writes) happens after it.
   */
  run(message: Record<string, unknown>, data: Uint8Array, transfer: ReadonlyArray<ArrayBuffer> = [], tracked?: Tracked) {
    const payload = sendable(data)
    const id = this.nextId++
    const promise = new Promise<Reply>((resolve) => {
      const job: QueuedJob = { id, message: { ...message, data: payload }, transfer: [...transfer, ...transferOf(payload)], resolve, tracked }
      const worker = this.idle.pop()
      if (worker === undefined) this.queue.push(job)
      else this.post(worker, job)
    })
    const cancel = async () => {
      const queued = this.queue.findIndex((job) => job.id === id)
      if (queued !== -1) this.queue.splice(queued, 1)
      const worker = this.running.get(id)
      if (worker === undefined) return
      this.running.delete(id)
      this.waiting.delete(id)
      this.untrack(id)
      this.counters.delete(worker)
      // A worker cannot be terminated while native work of its runs: ask that work to stop first.
      Atomics.store(this.stops.get(worker)!, 0, 1)
      this.stops.delete(worker)
      await worker.terminate()
      this.next(this.spawn())
    }
    return { promise, cancel }
  }
}

let shared: Pool | undefined
const pool = () => (shared ??= new Pool(poolSize()))

/**
 * Starts the workers now rather than at the first chunk: loading a worker
 * (its isolate, zstd and the addons) takes ~50-100 ms, which then overlaps
 * the catalog and document reads that come first.
 */
export const startWorkers = Effect.sync(() => void pool())

/** How many objects can be worked on at once. */
export const poolSize = () => Math.max(1, availableParallelism())

/**
 * A job in a worker as an Effect. Interruption stops it within moments, not
 * when the job would have ended (a 50 MiB bzip2 chunk takes seconds): the
 * worker is terminated and replaced, and the interruption completes once it
 * is gone.
 */
const inWorker = (message: Record<string, unknown>, data: Uint8Array, transfer: ReadonlyArray<ArrayBuffer> = [], weight = 0) =>
  Effect.flatMap(FiberRef.get(currentWorkInFlight), (work) =>
    Effect.async<Reply>((resume) => {
      const job = pool().run(message, data, transfer, work !== undefined && weight > 0 ? { work, weight } : undefined)
      void job.promise.then((reply) => resume(Effect.succeed(reply)))
      return Effect.promise(job.cancel)
    })
  )

/** `weight`: the volume bytes the job stands for in its operation's progress. */
const call = (message: Record<string, unknown>, data: Uint8Array, weight = 0) =>
  Effect.flatMap(inWorker(message, data, [], weight), (reply) => (reply.error !== undefined ? Effect.fail(reply.error) : Effect.succeed(reply)))

/**
 * md5 and compression of one object in a worker. A whole non-shared buffer
 * is handed over: the caller must not use it afterwards (when stored raw it
 * comes back as `bytes`). Shared data stays where it is.
 */
export const compressInWorker = (algorithm: string, data: Uint8Array): Effect.Effect<CodecResult, string> =>
  Effect.map(call({ op: "compress", algorithm }, data, data.length), (reply) => ({
    bytes: reply.raw === true && isShared(data) ? data : reply.bytes!,
    md5: reply.md5!,
    raw: reply.raw === true
  }))

/**
 * md5 and compression of several pieces of one slot (views of shared memory)
 * in one worker job: the pieces of a slot of many small chunks cost one
 * round trip, not one each. A piece stored raw comes back as itself.
 */
export const compressManyInWorker = (algorithm: string, pieces: ReadonlyArray<Uint8Array>): Effect.Effect<Array<CodecResult>, string> =>
  pieces.some((piece) => !isShared(piece))
    ? Effect.dieMessage("compressManyInWorker: every piece must be in shared memory (a slot)")
    : Effect.map(call({ op: "compressMany", algorithm, pieces }, new Uint8Array(0), pieces.reduce((sum, p) => sum + p.length, 0)), (reply) =>
        reply.pieces!.map((one, i) => ({ bytes: one.raw ? pieces[i]! : one.bytes!, md5: one.md5, raw: one.raw }))
      )

/** The SHA-256 of every `blockSize` block of `data`, 32 bytes each, in a worker; pass a slot to avoid a copy. */
export const hashInWorker = (data: Uint8Array, blockSize: number) =>
  call({ op: "hash", blockSize }, data).pipe(
    Effect.map((reply): Uint8Array => reply.digests!),
    Effect.orDieWith((reason) => new Error(`sha256 worker failed: ${reason}`))
  )

/**
 * Decompression and md5 of one object in a worker; `data` is handed over.
 * With `into` (a slot), the plain bytes are written there and `bytes` is a
 * view of it; the result must fit.
 */
export const decompressInWorker = (
  algorithm: string,
  data: Uint8Array,
  expectedLength: number,
  into?: Uint8Array
): Effect.Effect<CodecResult, string> =>
  into !== undefined && !isShared(into)
    ? Effect.dieMessage("decompressInWorker: `into` must be in shared memory (a slot)")
    : Effect.map(call({ op: "decompress", algorithm, expectedLength, into }, data, expectedLength), (reply) => ({
        bytes: into === undefined ? reply.bytes! : into.subarray(0, reply.length!),
        md5: reply.md5!,
        raw: false
      }))

export interface RestoreObjectJob {
  readonly algorithm: string
  /** the object's stored bytes, or (`path`) its file for the worker to read */
  readonly source: { readonly bytes: Uint8Array } | { readonly path: string }
  /** where in the slot it is decompressed */
  readonly at: number
  readonly expectedLength: number
  readonly expectedMd5: string
  /** [start, end) within the object, written at `position` of the target */
  readonly ranges: ReadonlyArray<readonly [start: number, end: number, position: number]>
  /** check each sha block of the ranges (which start on block boundaries) against these digests, 32 bytes each, in order */
  readonly sha256?: { readonly blockSize: number; readonly expected: Uint8Array }
}

export interface RestoreJob {
  readonly objects: ReadonlyArray<RestoreObjectJob>
  /** a slot with room for every object at its `at` */
  readonly into: Uint8Array
  /** the target's file descriptor */
  readonly fd: number
  /** skip all-zero parts: the target is new and its holes read as zeros */
  readonly sparse: boolean
}

export type RestoreOutcome =
  /** decompressed and checked; written only when both match */
  | { readonly _tag: "Checked"; readonly md5: string; readonly length: number }
  | { readonly _tag: "Failed"; readonly stage: "read" | "decompress" | "write"; readonly code: string | undefined; readonly reason: string }
  /** its md5 matched, but sha block `block` of the volume did not: nothing of it was written */
  | { readonly _tag: "ShaMismatch"; readonly block: number; readonly expected: string; readonly actual: string }

interface OutcomeReply {
  readonly md5?: string
  readonly length?: number
  readonly stage?: "read" | "decompress" | "write"
  readonly code?: string
  readonly error?: string
  readonly shaMismatch?: { readonly block: number; readonly expected: string; readonly actual: string }
}

/**
 * Objects of a restore in a worker, in one message: each is read,
 * decompressed into its place in the slot and checked (md5 and length), and
 * only then its visible ranges are written to the target. The outcomes stop
 * at the first object that does not check out. Interrupted, it terminates
 * the worker and returns once the worker is gone, so no write lands after.
 */
export const restoreInWorker = (job: RestoreJob): Effect.Effect<ReadonlyArray<RestoreOutcome>> => {
  if (!isShared(job.into)) return Effect.dieMessage("restoreInWorker: `into` must be in shared memory (a slot)")
  const objects = job.objects.map(({ source, ...rest }) =>
    "path" in source ? { ...rest, path: source.path } : { ...rest, data: sendable(source.bytes) }
  )
  const transfer = objects.flatMap((o) => ("data" in o ? transferOf(o.data) : []))
  const message = { op: "restore", objects, into: job.into, fd: job.fd, sparse: job.sparse }
  const visible = job.objects.reduce((sum, o) => o.ranges.reduce((inner, [start, end]) => inner + end - start, sum), 0)
  return inWorker(message, new Uint8Array(0), transfer, visible).pipe(
    Effect.flatMap((reply) =>
      reply.error !== undefined
        ? Effect.dieMessage(`restore worker failed: ${reply.error}`)
        : Effect.succeed(
            (reply.outcomes ?? []).map((o): RestoreOutcome =>
              o.stage !== undefined
                ? { _tag: "Failed", stage: o.stage, code: o.code, reason: o.error ?? "failed" }
                : o.shaMismatch !== undefined
                  ? { _tag: "ShaMismatch", ...o.shaMismatch }
                  : { _tag: "Checked", md5: o.md5!, length: o.length! }
            )
          )
    )
  )
}
