/**
 * The codec pool: worker threads (src/codec/worker.ts) for hashing,
 * compression and md5, as a scoped service. Compression and md5 are
 * CPU-bound and synchronous in Node (md5, zstd-napi), so on the main thread
 * they serialise a backup; in workers they use every core while the main
 * thread reads the volume and talks to the store.
 *
 * The workers start when the layer is built (loading one, with its isolate,
 * zstd and the addons, takes ~50-100 ms, which then overlaps what comes
 * first) and are terminated when its scope closes. Two layers are two pools.
 *
 * Data in shared memory (a chunk slot, see slots.ts) is worked on in place.
 * Other input is transferred when it is a whole buffer, else copied first,
 * so the buffer it is a view of survives.
 */
import { Context, Effect, FiberRef, Layer, type Scope } from "effect"
import { existsSync } from "node:fs"
import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import { packageFile } from "./native.js"
import type { Reply, ReplyTo, Request, WorkerData } from "./protocol.js"
import { sendable, transferOf } from "./slots.js"

/** A request as the pool's callers give it: the pool numbers it. */
export type Job = Request extends infer R ? (R extends Request ? Omit<R, "id"> : never) : never

/** The codec worker pool: runs compression, hashing and restore jobs on worker threads. Provided by `layerCodecPool`. */
export interface CodecPool {
  /** How many jobs run at once: the number of workers. */
  readonly size: number
  /**
   * Runs `job` in a worker, sending the buffers in `transfer` (and `data`,
   * when it is a whole buffer of its own). `weight` is the volume bytes the
   * job stands for in its operation's progress (see WorkInFlight).
   * Interrupted, a job still queued is dropped, and a running one is stopped
   * by terminating its worker (a fresh one takes its place when a job next
   * needs it): the interruption completes once that worker is gone, so
   * nothing of the job (a restore's writes) happens after it.
   */
  readonly run: <J extends Job>(job: J, transfer?: ReadonlyArray<ArrayBuffer>, weight?: number) => Effect.Effect<ReplyTo<J["op"]>>
}

/** The CodecPool service's tag. */
export const CodecPool = Context.GenericTag<CodecPool>("chunked-backup/CodecPool")

/** Settings of a codec pool. */
export interface CodecPoolOptions {
  /** workers (default: one per core) */
  readonly size?: number
}

/** Default pool size: one worker per core. */
export const defaultPoolSize = () => Math.max(1, availableParallelism())

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

/** The compiled worker: beside this module in dist/src/codec, or (running from src/, as the tests do) in dist/. */
const findWorkerScript = (): string => {
  const sibling = fileURLToPath(new URL("./worker.js", import.meta.url))
  if (existsSync(sibling)) return sibling
  const built = packageFile("dist/src/codec/worker.js")
  if (built === undefined) throw new Error("dist/src/codec/worker.js not found: run `npm run build`")
  return built
}

interface Queued {
  readonly request: Request
  readonly transfer: ReadonlyArray<ArrayBuffer>
  readonly resolve: (reply: Reply) => void
  readonly tracked: { readonly work: WorkInFlight; readonly weight: number } | undefined
}

interface Thread {
  readonly worker: Worker
  readonly counters: WorkerData
}

/**
 * Jobs wait here, not in a worker's inbox: a worker gets its next job only
 * when it is idle, so big objects cannot pile up behind one worker while
 * the other runs out of small ones (a chain restore had one worker busy
 * 1.25 s and the other 0.34 s when jobs went to the least-loaded inbox).
 */
const makeWorkers = (size: number) => {
  const script = findWorkerScript()
  const idle: Array<Thread> = []
  const all = new Set<Thread>()
  const queue: Array<Queued> = []
  /** Posted jobs: their thread, how to answer, and where their progress is registered. */
  const running = new Map<number, { readonly thread: Thread; readonly resolve: (reply: Reply) => void; readonly untrack: () => void }>()
  let nextId = 0
  let closed = false

  const spawn = (): Thread => {
    const counters: WorkerData = { stop: new Int32Array(new SharedArrayBuffer(4)), done: new BigInt64Array(new SharedArrayBuffer(8)) }
    const worker = new Worker(script, { workerData: counters })
    const thread = { worker, counters }
    all.add(thread)
    worker.on("message", (reply: Reply) => {
      const job = running.get(reply.id)
      // The reply of a job cancelled meanwhile: its worker is being terminated, not reused.
      if (job === undefined) return
      running.delete(reply.id)
      // Before the worker's next job reuses the counter.
      job.untrack()
      next(thread)
      job.resolve(reply)
    })
    // Idle workers must not keep the process alive (after `on`, which refs the port).
    worker.unref()
    return thread
  }

  const next = (thread: Thread) => {
    const job = queue.shift()
    if (job !== undefined) return post(thread, job)
    thread.worker.unref()
    idle.push(thread)
  }

  const post = (thread: Thread, job: Queued) => {
    // The worker is idle, so nothing else writes its counter now.
    const counter = thread.counters.done
    Atomics.store(counter, 0, 0n)
    let untrack = () => {}
    if (job.tracked !== undefined) {
      const entry = { counter, weight: job.tracked.weight }
      const { work } = job.tracked
      work.jobs.add(entry)
      untrack = () => void work.jobs.delete(entry)
    }
    running.set(job.request.id, { thread, resolve: job.resolve, untrack })
    thread.worker.ref()
    thread.worker.postMessage(job.request, [...job.transfer])
  }

  const retire = async (thread: Thread) => {
    all.delete(thread)
    // A worker cannot be terminated while native work of its runs: ask that work to stop first.
    Atomics.store(thread.counters.stop, 0, 1)
    await thread.worker.terminate()
  }

  const submit = (job: Job, transfer: ReadonlyArray<ArrayBuffer>, tracked: Queued["tracked"]) => {
    const id = nextId++
    const data = "data" in job ? sendable(job.data) : undefined
    const request = { ...job, id, ...(data === undefined ? {} : { data }) } as Request
    const promise = new Promise<Reply>((resolve) => {
      if (closed) return resolve({ op: "failed", id, error: "the codec pool is closed" })
      const queued: Queued = { request, transfer: [...transfer, ...(data === undefined ? [] : transferOf(data))], resolve, tracked }
      // A worker terminated by a cancel is replaced here, when work needs it, not at the cancel:
      // an interrupted operation is usually ending, and starting an isolate then slows its clean-up.
      const thread = idle.pop() ?? (all.size < size ? spawn() : undefined)
      if (thread === undefined) queue.push(queued)
      else post(thread, queued)
    })
    const cancel = async () => {
      const queued = queue.findIndex((q) => q.request.id === id)
      if (queued !== -1) queue.splice(queued, 1)
      const job = running.get(id)
      if (job === undefined) return
      running.delete(id)
      job.untrack()
      await retire(job.thread)
      // Jobs queued meanwhile get the replacement now.
      while (!closed && queue.length > 0 && all.size < size) next(spawn())
    }
    return { promise, cancel }
  }

  const close = async () => {
    closed = true
    for (const job of queue.splice(0)) job.resolve({ op: "failed", id: job.request.id, error: "the codec pool is closed" })
    for (const [id, job] of running) {
      running.delete(id)
      job.untrack()
      job.resolve({ op: "failed", id, error: "the codec pool is closed" })
    }
    idle.length = 0
    await Promise.all([...all].map(retire))
  }

  for (let i = 0; i < size; i++) idle.push(spawn())
  return { submit, close }
}

/** A pool of `options.size` workers (default one per core), terminated when the scope closes. */
export const makeCodecPool = (options: CodecPoolOptions = {}): Effect.Effect<CodecPool, never, Scope.Scope> =>
  Effect.gen(function* () {
    const size = Math.max(1, Math.floor(options.size ?? defaultPoolSize()))
    const workers = yield* Effect.acquireRelease(
      Effect.sync(() => makeWorkers(size)),
      (w) => Effect.promise(w.close)
    )
    const run = <J extends Job>(job: J, transfer: ReadonlyArray<ArrayBuffer> = [], weight = 0) =>
      Effect.flatMap(FiberRef.get(currentWorkInFlight), (work) =>
        Effect.async<ReplyTo<J["op"]>>((resume) => {
          const submitted = workers.submit(job, transfer, work !== undefined && weight > 0 ? { work, weight } : undefined)
          void submitted.promise.then((reply) => resume(Effect.succeed(reply as ReplyTo<J["op"]>)))
          return Effect.promise(submitted.cancel)
        })
      )
    return CodecPool.of({ size, run })
  })

/** The codec pool as a layer: its workers live as long as the layer's scope. */
export const layerCodecPool = (options: CodecPoolOptions = {}): Layer.Layer<CodecPool> => Layer.scoped(CodecPool, makeCodecPool(options))
