/**
 * The fuzz harness: real backups (a full + incremental chain, and one full
 * backup per other compression) made by the library into a posix store, then
 * `cases` seeded mutations, one damaged object (or exported record) per case,
 * the original bytes put back after it. Each case runs restore, verify,
 * verify --full and a dry-run scan and checks what a user relies on: a typed
 * error with a CLI exit code other than 0 and 1, or a bit-exact restore;
 * bounded time; nothing written outside the restore target; no record left
 * claimed; bounded memory.
 */
import type { FileSystem } from "@effect/platform"
import { Cause, Duration, Effect, Exit, Layer } from "effect"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { outcomeOf } from "../../src/cli/errors.js"
import { backup, BackupCatalog, type CodecPool, exportRecord, importRecord, layerMemoryCatalog, layerPosix, ObjectStore, restore, scan, verify } from "../../src/index.js"
import { treeSnapshot } from "./inspect.js"
import { localServices, patternedVolume, writeVolume } from "./layers.js"
import { makeRandom, mutateBytes, mutateDocument, type Random } from "./mutate.js"

const BLOCK = 1024
const VOLUME_BYTES = 23 * BLOCK + 300
/** Each operation of a case must end within this; a timeout fails the run. */
export const CASE_TIMEOUT = Duration.seconds(10)
/** How far the JS heap alive after a full GC may grow over the run. */
export const MEMORY_BOUND = 300 * 1024 * 1024

/**
 * A full GC (exposed through V8's flag at run time), then the JS heap still
 * alive. RSS and array buffers do not tell: the shared slot buffers of
 * finished restores are freed lazily (they are shared with the codec
 * workers), and an in-process run of thousands of restores reaches GiBs of
 * RSS that no GC of this thread gives back (reported, not yet fixed).
 */
const collectGarbage: () => void = (() => {
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
})()
const retained = () => {
  collectGarbage()
  return process.memoryUsage().heapUsed
}

export interface FuzzSummary {
  readonly cases: number
  /** cases whose restore failed with a typed error */
  readonly typed: number
  /** cases whose restore succeeded and wrote exactly the backed-up volume */
  readonly bitExact: number
  /** cases of a damaged exported record: imported, or refused typed */
  readonly records: { readonly imported: number; readonly refused: number }
  /** growth of the JS heap alive after a full GC, at its highest */
  readonly retainedGrowth: number
  /** growth of RSS at its highest (garbage included) */
  readonly peakRssGrowth: number
  /** what broke a rule, one line per case (empty: the run passed) */
  readonly failures: ReadonlyArray<string>
}

interface Made {
  /** the backup a case restores and verifies */
  readonly tip: string
  /** the backups whose objects a case damages (the tip's chain) */
  readonly chain: ReadonlyArray<string>
  readonly volume: Uint8Array
}

/** Backups of patterned volumes, one chain per compression; zlib gets an incremental in zstd. */
const makeBackups = (dir: string) =>
  Effect.gen(function* () {
    const made: Made[] = []
    const options = { chunkSize: 4 * BLOCK, shaBlockSize: BLOCK }
    for (const [i, compression] of (["zlib", "bz2", "zstd", "none"] as const).entries()) {
      const path = join(dir, `volume-${compression}.img`)
      const first = patternedVolume(VOLUME_BYTES, i + 1)
      yield* writeVolume(path, first)
      yield* backup({ id: `full-${compression}`, volume_id: `v-${compression}` }, path, { ...options, compression })
      if (compression !== "zlib") {
        made.push({ tip: `full-${compression}`, chain: [`full-${compression}`], volume: first })
        continue
      }
      const second = Uint8Array.from(first)
      second.fill(0x5a, 5 * BLOCK, 9 * BLOCK + 17)
      yield* writeVolume(path, second)
      yield* backup({ id: "inc-zlib", volume_id: "v-zlib", parent_id: "full-zlib" }, path, { ...options, compression: "zstd" })
      made.push({ tip: "inc-zlib", chain: ["full-zlib", "inc-zlib"], volume: second })
    }
    return made
  })

/** Runs one operation of a case: its Exit, or a failure line when it died or took too long. */
const attempt = <A, E, R>(what: string, program: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(Effect.timeout(program, CASE_TIMEOUT))
    if (Exit.isSuccess(exit)) return { exit, failure: undefined }
    const { code, message } = outcomeOf(exit.cause)
    const timedOut = Cause.failureOption(exit.cause).pipe((o) => o._tag === "Some" && (o.value as { _tag?: string })._tag === "TimeoutException")
    if (timedOut) return { exit, failure: `${what}: took longer than ${Duration.format(CASE_TIMEOUT)}` }
    if (code === 0 || code === 1 || message === "") return { exit, failure: `${what}: not a typed error (exit ${code}): ${Cause.pretty(exit.cause)}` }
    return { exit, failure: undefined }
  })

/** One damaged object of a backup of the chain: restore, verify, verify --full and scan. */
const objectCase = (random: Random, made: Made, caseDir: string, storeRoot: string) =>
  Effect.gen(function* () {
    const store = yield* ObjectStore
    const catalog = yield* BackupCatalog
    const record = yield* catalog.get(random.pick(made.chain))
    const container = record.container!
    const names = yield* store.list(container, record.service_metadata!)
    const name = random.pick(names)
    const original = yield* store.get(container, name)
    const isDocument = name.endsWith("_metadata") || name.endsWith("_sha256file")
    let mutation = isDocument ? mutateDocument(random, original, VOLUME_BYTES) : mutateBytes(random, original)
    // Documents sometimes take a second edit on top of the first.
    if (isDocument && random.int(3) === 0) {
      const second = mutateDocument(random, mutation.bytes, VOLUME_BYTES)
      mutation = { bytes: second.bytes, what: `${mutation.what}, then ${second.what}` }
    }
    const label = `${name} (${mutation.what})`
    const storeBefore = treeSnapshot(storeRoot)
    yield* store.put(container, name, mutation.bytes)
    const failures: string[] = []
    let outcome: "typed" | "bitExact" | "wrong" = "typed"
    try {
      const target = join(caseDir, "restored.img")
      const restored = yield* attempt(`restore ${made.tip} with ${label}`, restore(made.tip, target))
      if (restored.failure !== undefined) failures.push(restored.failure)
      if (Exit.isSuccess(restored.exit)) {
        const exact = existsSync(target) && readFileSync(target).equals(Buffer.from(made.volume))
        outcome = exact ? "bitExact" : "wrong"
        if (!exact) failures.push(`restore ${made.tip} with ${label}: succeeded with wrong bytes`)
      }
      for (const full of [false, true]) {
        const checked = yield* attempt(`verify${full ? " --full" : ""} ${made.tip} with ${label}`, verify(made.tip, { full }))
        if (checked.failure !== undefined) failures.push(checked.failure)
      }
      // A dry-run scan into an empty catalog checks every backup found in the store.
      const scanned = yield* attempt(`scan with ${label}`, Effect.provide(scan({ dryRun: true }), layerMemoryCatalog()))
      if (scanned.failure !== undefined) failures.push(scanned.failure)
      const left = readdirSync(caseDir).filter((file) => file !== "restored.img")
      if (left.length > 0) failures.push(`restore ${made.tip} with ${label}: left ${left.join(", ")} beside the target`)
      const status = (yield* catalog.get(made.tip)).status
      if (status !== "available") failures.push(`restore ${made.tip} with ${label}: left the backup ${status}`)
    } finally {
      yield* store.put(container, name, original)
    }
    const storeAfter = treeSnapshot(storeRoot)
    if (JSON.stringify(storeAfter) !== JSON.stringify(storeBefore)) failures.push(`${label}: the store changed beyond the damaged object`)
    return { outcome, failures }
  })

/** An exported record with a damaged field: imported as a plausible record, or refused typed. */
const recordCase = (random: Random, made: Made) =>
  Effect.gen(function* () {
    const record = yield* (yield* BackupCatalog).get(made.tip)
    const exported = exportRecord(record, "posix")
    const json = Buffer.from(exported.backup_url, "base64")
    const mutation = mutateDocument(random, json, VOLUME_BYTES)
    const result = yield* attempt(`import-record with ${mutation.what}`, importRecord(exported.backup_service, Buffer.from(mutation.bytes).toString("base64")))
    return { imported: Exit.isSuccess(result.exit), failures: result.failure === undefined ? [] : [result.failure] }
  })

/** Runs `cases` seeded cases in `dir` (a temp directory the caller removes). */
export const runFuzz = (dir: string, cases: number, seed: number) =>
  Effect.gen(function* () {
    const storeRoot = join(dir, "store")
    const services: Layer.Layer<ObjectStore | BackupCatalog | FileSystem.FileSystem | CodecPool> = Layer.mergeAll(layerPosix({ root: storeRoot }), layerMemoryCatalog()).pipe(
      Layer.provideMerge(localServices)
    )
    return yield* Effect.gen(function* () {
      const made = yield* makeBackups(dir)
      const rssStart = process.memoryUsage().rss
      let rssMax = rssStart
      const retainedStart = retained()
      let retainedMax = retainedStart
      let typed = 0
      let bitExact = 0
      const records = { imported: 0, refused: 0 }
      const failures: string[] = []
      for (let n = 0; n < cases; n++) {
        const random = makeRandom(seed * 1_000_003 + n)
        const chain = random.pick(made)
        if (random.int(10) === 0) {
          const result = yield* recordCase(random, chain)
          records[result.imported ? "imported" : "refused"]++
          failures.push(...result.failures.map((f) => `case ${n}: ${f}`))
        } else {
          const caseDir = join(dir, `case-${n}`)
          mkdirSync(caseDir)
          const result = yield* objectCase(random, chain, caseDir, storeRoot).pipe(Effect.ensuring(Effect.sync(() => rmSync(caseDir, { recursive: true, force: true }))))
          if (result.outcome === "bitExact") bitExact++
          else if (result.outcome === "typed") typed++
          failures.push(...result.failures.map((f) => `case ${n}: ${f}`))
        }
        rssMax = Math.max(rssMax, process.memoryUsage().rss)
        if (n % 50 === 49) retainedMax = Math.max(retainedMax, retained())
      }
      const retainedGrowth = Math.max(retainedMax, retained()) - retainedStart
      if (retainedGrowth > MEMORY_BOUND) failures.push(`retained memory grew by ${Math.round(retainedGrowth / 2 ** 20)} MiB`)
      return { cases, typed, bitExact, records, retainedGrowth, peakRssGrowth: rssMax - rssStart, failures } satisfies FuzzSummary
    }).pipe(Effect.provide(services))
  })
