/**
 * A pool of codec worker threads (lib/codec-worker.mjs). Compression and
 * md5 are CPU-bound and synchronous in Node (md5, zstd-napi), so on the main
 * thread they serialise a backup; in workers they use every core while the
 * main thread reads the volume and talks to the store.
 *
 * Whole buffers are transferred, not copied; a view into a larger buffer
 * (an incremental piece of a chunk) is copied first, so the chunk survives.
 */
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { availableParallelism } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"

export interface CodecResult {
  /** compressed (or decompressed) bytes */
  readonly bytes: Uint8Array
  /** md5 of the uncompressed bytes */
  readonly md5: string
  /** compress: stored raw because compression did not shrink it */
  readonly raw: boolean
  /** compress: the input, handed back (the same memory as `bytes` when raw) */
  readonly input?: Uint8Array
}

interface Reply {
  readonly id: number
  readonly error?: string
  readonly md5?: string
  readonly bytes?: Uint8Array
  /** compress: the input came back unchanged (it did not shrink) */
  readonly raw?: boolean
  /** compress: the input buffer, handed back */
  readonly input?: Uint8Array
  /** hash: the SHA-256 of each block */
  readonly hashes?: ReadonlyArray<string>
}

const findWorkerScript = (): string => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "lib", "codec-worker.mjs")
    if (existsSync(candidate)) return candidate
    dir = dirname(dir)
  }
  throw new Error("lib/codec-worker.mjs not found")
}

class Pool {
  private readonly workers: Array<{ worker: Worker; busy: number }> = []
  private readonly pending = new Map<number, (reply: Reply) => void>()
  private nextId = 0

  constructor(size: number) {
    const script = findWorkerScript()
    for (let i = 0; i < size; i++) {
      const worker = new Worker(script)
      const slot = { worker, busy: 0 }
      worker.on("message", (reply: Reply) => {
        slot.busy--
        if (slot.busy === 0) worker.unref()
        const resolve = this.pending.get(reply.id)
        this.pending.delete(reply.id)
        resolve?.(reply)
      })
      // Idle workers must not keep the process alive (after `on`, which refs the port).
      worker.unref()
      this.workers.push(slot)
    }
  }

  run(message: Record<string, unknown>, data: Uint8Array): Promise<Reply> {
    const slot = this.workers.reduce((a, b) => (b.busy < a.busy ? b : a))
    const id = this.nextId++
    const owned = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !(data.buffer instanceof SharedArrayBuffer)
    const payload = owned ? data : data.slice()
    return new Promise((resolve) => {
      this.pending.set(id, resolve)
      slot.busy++
      slot.worker.ref()
      slot.worker.postMessage({ ...message, id, data: payload }, [payload.buffer as ArrayBuffer])
    })
  }
}

let shared: Pool | undefined
const pool = () => (shared ??= new Pool(Math.max(1, availableParallelism())))

/** How many objects can be worked on at once. */
export const poolSize = () => Math.max(1, availableParallelism())

const call = (message: Record<string, unknown>, data: Uint8Array) =>
  Effect.flatMap(
    Effect.promise(() => pool().run(message, data)),
    (reply): Effect.Effect<CodecResult, string> =>
      reply.error !== undefined
        ? Effect.fail(reply.error)
        : Effect.succeed({ bytes: reply.bytes!, md5: reply.md5!, raw: reply.raw === true, ...(reply.input === undefined ? {} : { input: reply.input }) })
  )

/**
 * md5 and compression of one object in a worker. `data` is handed over:
 * when it is a whole buffer, the caller must not use it afterwards.
 */
export const compressInWorker = (algorithm: string, data: Uint8Array) => call({ op: "compress", algorithm }, data)

/**
 * The SHA-256 of every `blockSize` block of a chunk, in a worker. The chunk
 * travels there and back without copying: use the returned bytes.
 */
export const hashInWorker = (data: Uint8Array, blockSize: number) =>
  Effect.flatMap(
    Effect.promise(() => pool().run({ op: "hash", blockSize }, data)),
    (reply): Effect.Effect<{ readonly bytes: Uint8Array; readonly hashes: ReadonlyArray<string> }> =>
      reply.error !== undefined
        ? Effect.die(new Error(`sha256 worker failed: ${reply.error}`))
        : Effect.succeed({ bytes: reply.bytes!, hashes: reply.hashes! })
  )

/** Decompression and md5 of one object in a worker. */
export const decompressInWorker = (algorithm: string, data: Uint8Array, expectedLength: number) =>
  call({ op: "decompress", algorithm, expectedLength }, data)
