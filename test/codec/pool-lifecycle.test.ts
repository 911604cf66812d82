/**
 * The codec pool as a scoped service: its workers start with the layer and
 * end with its scope; two layers are two pools; a program that closes its
 * scope leaves nothing that keeps the process alive.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import { spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { CodecPool, layerCodecPool, makeCodecPool } from "../../src/index.js"
import { hashInWorker } from "../../src/codec/poolJobs.js"

/** This process's threads (Linux): each worker is one. */
const threads = () => readdirSync("/proc/self/task").length

/** Until `check` holds, for at most `ms`. */
const eventually = (check: () => boolean, ms = 5000) =>
  Effect.promise(async () => {
    for (const end = Date.now() + ms; !check() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20))
    return check()
  })

const someJobs = (count: number) =>
  Effect.all(Array.from({ length: count }, (_, i) => hashInWorker(new Uint8Array(64 * 1024).fill(i), 4096)), { concurrency: "unbounded" })

describe("the codec pool's life cycle", () => {
  it.live("its workers are threads that start with the layer and are gone when its scope closes", () =>
    Effect.gen(function* () {
      const before = threads()
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(makeCodecPool({ size: 3 }), scope)
      expect(pool.size).toBe(3)
      yield* someJobs(6).pipe(Effect.provideService(CodecPool, pool))
      expect(threads()).toBeGreaterThanOrEqual(before + 3)
      yield* Scope.close(scope, Exit.void)
      expect(yield* eventually(() => threads() <= before)).toBe(true)
      // A job on a closed pool fails instead of hanging.
      const late = yield* Effect.exit(someJobs(1).pipe(Effect.provideService(CodecPool, pool)))
      expect(Exit.isFailure(late)).toBe(true)
    })
  )

  it.live("two layers are two pools: closing one leaves the other working", () =>
    Effect.gen(function* () {
      const first = yield* Scope.make()
      const second = yield* Scope.make()
      const a = yield* Layer.buildWithScope(layerCodecPool({ size: 1 }), first)
      const b = yield* Layer.buildWithScope(layerCodecPool({ size: 2 }), second)
      const withA = Effect.provide(a)
      const withB = Effect.provide(b)
      expect(yield* Effect.map(CodecPool, (p) => p.size).pipe(withA)).toBe(1)
      expect(yield* Effect.map(CodecPool, (p) => p.size).pipe(withB)).toBe(2)
      yield* Scope.close(first, Exit.void)
      const digests = yield* someJobs(4).pipe(withB)
      expect(digests).toHaveLength(4)
      expect(digests[0]!.length).toBe(16 * 32)
      yield* Scope.close(second, Exit.void)
    })
  )

  it.live("an interrupted job's worker is terminated, and replaced only when a job needs it", () =>
    Effect.gen(function* () {
      const before = threads()
      const scope = yield* Scope.make()
      const pool = yield* Scope.extend(makeCodecPool({ size: 2 }), scope)
      // bzip2 of 32 MiB of noise runs for seconds: it is running when interrupted.
      const long = yield* Effect.fork(pool.run({ op: "compress", algorithm: "bz2", data: randomBytes(32 * 1024 * 1024) }))
      yield* Effect.sleep("200 millis")
      yield* Fiber.interrupt(long)
      // The interruption returned after the worker was gone, and none took its place yet.
      expect(threads()).toBe(before + 1)
      yield* someJobs(4).pipe(Effect.provideService(CodecPool, pool))
      expect(threads()).toBe(before + 2)
      yield* Scope.close(scope, Exit.void)
      expect(yield* eventually(() => threads() <= before)).toBe(true)
    })
  )

  it("a program that backs up and restores, then closes its scope, exits by itself with no handle left", () => {
    const dir = mkdtempSync(join(tmpdir(), "cb-pool-exit-"))
    try {
      const library = resolve("dist/src/index.js")
      const script = join(dir, "program.mjs")
      writeFileSync(
        script,
        `
import * as NodeFileSystem from ${JSON.stringify(resolve("node_modules/@effect/platform-node/dist/esm/NodeFileSystem.js"))}
import { Effect, Layer } from ${JSON.stringify(resolve("node_modules/effect/dist/esm/index.js"))}
import { writeFileSync, readFileSync } from "node:fs"
import { backup, restore, layerCodecPool, layerMemory, layerMemoryCatalog } from ${JSON.stringify(library)}
const volume = ${JSON.stringify(join(dir, "vol.img"))}
writeFileSync(volume, Buffer.alloc(3 * 1024 * 1024, 7))
const program = Effect.gen(function* () {
  yield* backup({ id: "b", volume_id: "v" }, volume, { chunkSize: 1024 * 1024, compression: "bz2" })
  yield* restore("b", volume + ".out")
})
await Effect.runPromise(program.pipe(Effect.provide(Layer.mergeAll(layerCodecPool(), layerMemory(), layerMemoryCatalog(), NodeFileSystem.layer))))
if (!readFileSync(volume).equals(readFileSync(volume + ".out"))) throw new Error("restored bytes differ")
// What is left that could keep the process alive, beyond stdio.
console.log(JSON.stringify(process.getActiveResourcesInfo().filter((r) => r !== "TTYWrap" && r !== "PipeWrap")))
`
      )
      // A timeout means something kept the process alive.
      const run = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 30_000 })
      expect(run.error, run.stderr).toBeUndefined()
      expect(run.status, run.stderr).toBe(0)
      expect(JSON.parse(run.stdout.trim())).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
