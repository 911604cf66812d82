/**
 * Golden compatibility with OpenStack Cinder's real PosixBackupDriver
 * (Debian's python3-cinder 21.3.1, driven by test/oracle/cinder_posix.py).
 *
 * Both sides use the posix layout under a root directory (our
 * `layerPosix({ root })` is Cinder's `backup_posix_path`). One volume of
 * 3 MiB + 1000 bytes (random, zero and patterned runs; not a multiple of the
 * sha block) is backed up full, then edited in scattered places (one run
 * crossing the 2 MiB chunk boundary, one run that zeroes two whole sha
 * blocks, the last byte, a run ending exactly at a chunk end) and backed up
 * incrementally. Chunk size 1 MiB, sha block 32 KiB, volume_size_gib 1.
 *
 *   1. Cinder → us: Cinder backs up (full + incremental); we import the
 *      records and restore the incremental, and the full alone.
 *   2. us → Cinder: we back up; Cinder restores the incremental.
 *   3. Documents: for the same input, ids, names, created_at and clock, our
 *      `_metadata` and `_sha256file` are byte-identical to Cinder's (bz2 and
 *      uncompressed data objects too).
 *   4. volume_meta travels both ways (Cinder's get_metadata → our
 *      VolumeMetadata.put; our VolumeMetadata.get → Cinder's put_metadata).
 *
 * Every oracle run is memoised per case and all of them are started in
 * beforeAll, so they overlap (test/support/cinderOracle.ts bounds how many
 * interpreters run at once); the tests then await what they need.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  backup,
  BackupCatalog,
  layerMemoryCatalog,
  layerPosix,
  newBackupRecord,
  restore,
  runBackup,
  VolumeMetadata,
  type BackupRecord
} from "../../src/index.js"
import { runOracle, type OracleBackupResult, type OracleRecord, type OracleRestoreResult } from "../support/cinderOracle.js"
import { localServices } from "../support/layers.js"

// ---- the volume -------------------------------------------------------------

const KiB = 1024
const MiB = 1024 * KiB
const CHUNK_SIZE = MiB
const SHA_BLOCK_SIZE = 32 * KiB
const VOLUME_SIZE = 3 * MiB + 1000
const VOLUME_ID = "5e1f4a2b-7c3d-4e8f-9a0b-1c2d3e4f5a6b"

/** xorshift32: the same bytes on every run. */
const fillRandom = (bytes: Uint8Array, start: number, end: number, seed: number) => {
  let x = (Math.imul(seed, 0x9e3779b9) >>> 0) || 1
  for (let i = start; i < end; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    bytes[i] = x & 0xff
  }
}

/**
 * chunk 0: random then zeros (compressible); chunk 1: zeros, text, random;
 * chunk 2: all random (every codec falls back to "none"); the 1000-byte
 * tail: zeros then random.
 */
const makeBase = (): Uint8Array => {
  const v = new Uint8Array(VOLUME_SIZE)
  fillRandom(v, 0, 300_000, 1)
  const text = new TextEncoder().encode("chunked-backup golden volume, région répétée; ")
  for (let i = 1_200_000; i < 1_500_000; i++) v[i] = text[i % text.length]!
  fillRandom(v, 1_500_000, 3 * MiB, 2)
  fillRandom(v, 3 * MiB + 800, VOLUME_SIZE, 3)
  return v
}

const makeEdited = (base: Uint8Array): Uint8Array => {
  const v = base.slice()
  for (let i = 100; i < 106; i++) v[i] = v[i]! ^ 0xff // first sha block
  v[700_000] = 0x5a // a zero region of chunk 0 becomes non-zero
  v.fill(0, 48 * SHA_BLOCK_SIZE, 50 * SHA_BLOCK_SIZE) // two whole random blocks of chunk 1 zeroed
  fillRandom(v, 2 * MiB - 40_000, 2 * MiB + 50_000, 4) // crosses the chunk 1 / chunk 2 boundary
  fillRandom(v, 3 * MiB - 10, 3 * MiB, 5) // a run ending exactly at the end of chunk 2
  v[VOLUME_SIZE - 1] = v[VOLUME_SIZE - 1]! ^ 0x01 // the short last block
  return v
}

/** Data objects of the incremental: the runs of changed sha blocks, never across a chunk end. */
const INCR_OBJECTS = 7

const BASE = makeBase()
const EDITED = makeEdited(BASE)

// ---- what both sides are told -------------------------------------------------

/** The full backup: non-ASCII (astral too) name, null description. */
const FULL = {
  name: "sauvegarde é 日本 😀",
  description: null,
  createdAt: new Date("2026-11-26T04:04:46Z"),
  createdAtIso: "2026-11-26T04:04:46Z",
  timestamp: "20261126040446"
} as const
/** The incremental: escapes in the description, a sub-second created_at (str() gives .250000). */
const INCR = {
  name: "incrémental ✓",
  description: 'deux lignes\n"citée" \\ tab\t — ü 😀',
  createdAt: new Date("2026-11-26T05:06:07.250Z"),
  createdAtIso: "2026-11-26T05:06:07.250000Z",
  timestamp: "20261126050607",
  now: new Date("2026-11-26T05:06:07Z")
} as const

/** volume_meta strings as BackupMetadataAPI.get produces them (version 2). */
const META_FULL =
  '{"version": 2, "volume-base-metadata": {"display_name": "vol \\u00e9", "size": 1, "bootable": false}, ' +
  '"volume-metadata": {"tier": "gold"}, "volume-glance-metadata": {}}'
const META_INCR = '{"version": 2, "volume-metadata": {"city": "Zürich 日本", "note": "tab\\there \\"q\\""}}'

interface Case {
  readonly index: number
  readonly compression: string
  /** both backups carry volume_meta */
  readonly withMeta: boolean
  /** compressed data objects are reproducible across builds (bz2) or raw */
  readonly identicalObjects: boolean
}
const CASES: ReadonlyArray<Case> = [
  { compression: "zlib", withMeta: true, identicalObjects: false },
  { compression: "bz2", withMeta: false, identicalObjects: true },
  { compression: "zstd", withMeta: true, identicalObjects: false },
  { compression: "none", withMeta: false, identicalObjects: true },
  { compression: "gzip", withMeta: false, identicalObjects: false },
  { compression: "bzip2", withMeta: true, identicalObjects: true }
].map((c, index) => ({ ...c, index }))
const caseOf = (compression: string) => CASES.find((c) => c.compression === compression)!

/** Deterministic UUIDs: `side` 1 = made by Cinder (and our twins), 2 = made by us for Cinder. */
const uuid = (side: 1 | 2, c: Case, kind: "full" | "incr") => {
  const tag = `${side}${c.index}${kind === "full" ? 1 : 2}`
  return `${tag}00000-7e57-4c1d-8a5e-00000000${tag}0`
}

// ---- places ---------------------------------------------------------------------

let dir = ""
const paths = {
  base: () => join(dir, "base.img"),
  edited: () => join(dir, "edited.img"),
  /** Cinder's backups (direction 1) and our restores of them share this root. */
  cinderRoot: () => join(dir, "root-cinder"),
  /** our twins of Cinder's backups (direction 3): same containers and prefixes, other root */
  twinRoot: () => join(dir, "root-twins"),
  /** our backups that Cinder restores (direction 2) */
  oursRoot: () => join(dir, "root-ours"),
  out: (name: string) => join(dir, "out", name)
}

// ---- services ---------------------------------------------------------------------

/** A VolumeMetadata whose `get` answers `current` and whose `put` records. */
const makeMetaApi = () => {
  const state = { current: null as string | null, puts: [] as Array<string> }
  const layer = Layer.succeed(
    VolumeMetadata,
    VolumeMetadata.of({
      get: () => Effect.sync(() => state.current),
      put: (_volumeId, volumeMeta) => Effect.sync(() => void state.puts.push(volumeMeta))
    })
  )
  return { state, layer }
}

const servicesAt = (root: string, meta: Layer.Layer<VolumeMetadata>) =>
  Layer.mergeAll(layerPosix({ root }), layerMemoryCatalog(), meta).pipe(Layer.provideMerge(localServices))

const options = (compression: string, now: Date) => ({ chunkSize: CHUNK_SIZE, shaBlockSize: SHA_BLOCK_SIZE, compression, now })

// ---- record conversions -----------------------------------------------------------

/** Our record as the oracle's fake DB row. */
const toOracle = (record: BackupRecord, status: string): OracleRecord => ({
  id: record.id,
  volume_id: record.volume_id,
  parent_id: record.parent_id,
  container: record.container,
  service_metadata: record.service_metadata,
  display_name: record.display_name,
  display_description: record.display_description,
  created_at: record.created_at.toISOString(),
  size: record.size,
  status,
  availability_zone: record.availability_zone,
  object_count: record.object_count,
  service: record.service
})

/** Cinder's record after its backup, as a parent row for the next oracle run. */
const oracleRow = (out: OracleBackupResult, status: string): OracleRecord => ({
  id: out.id,
  volume_id: out.volume_id,
  parent_id: out.parent_id,
  container: out.container,
  service_metadata: out.service_metadata,
  display_name: out.display_name,
  display_description: out.display_description,
  created_at: out.created_at,
  size: out.size,
  status,
  availability_zone: out.availability_zone,
  object_count: out.object_count,
  service: out.service
})

/** `cinder backup-import`, in effect: Cinder's record into our catalog. */
const importRecord = (out: OracleBackupResult): BackupRecord =>
  newBackupRecord({
    id: out.id,
    volume_id: out.volume_id,
    volume_size_bytes: VOLUME_SIZE,
    size: out.size,
    parent_id: out.parent_id,
    container: out.container,
    service_metadata: out.service_metadata,
    status: "available",
    object_count: out.object_count,
    display_name: out.display_name,
    display_description: out.display_description,
    created_at: new Date(out.created_at),
    availability_zone: out.availability_zone,
    service: out.service
  })

// ---- memoised jobs ----------------------------------------------------------------

const memoByCase = <A>(job: (c: Case) => Promise<A>) => {
  const cache = new Map<number, Promise<A>>()
  return (c: Case): Promise<A> => {
    let promise = cache.get(c.index)
    if (promise === undefined) {
      promise = job(c)
      promise.catch(() => {}) // reported by the tests that await it
      cache.set(c.index, promise)
    }
    return promise
  }
}

/** Direction 1/3: Cinder backs up the base volume, then the edited one incrementally. */
const cinderChain = memoByCase(async (c) => {
  const common = {
    op: "backup" as const,
    backup_path: paths.cinderRoot(),
    compression: c.compression,
    chunk_size: CHUNK_SIZE,
    sha_block_size: SHA_BLOCK_SIZE,
    volume_size_gib: 1
  }
  const full = await runOracle({
    ...common,
    volume_path: paths.base(),
    timestamp: FULL.timestamp,
    volume_meta: c.withMeta ? META_FULL : null,
    backup: {
      id: uuid(1, c, "full"),
      volume_id: VOLUME_ID,
      parent_id: null,
      container: null,
      service_metadata: null,
      display_name: FULL.name,
      display_description: FULL.description,
      created_at: FULL.createdAtIso,
      size: 1,
      status: "creating"
    }
  })
  const incr = await runOracle({
    ...common,
    volume_path: paths.edited(),
    timestamp: INCR.timestamp,
    volume_meta: c.withMeta ? META_INCR : null,
    backup: {
      id: uuid(1, c, "incr"),
      volume_id: VOLUME_ID,
      parent_id: full.id,
      container: null,
      service_metadata: null,
      display_name: INCR.name,
      display_description: INCR.description,
      created_at: INCR.createdAtIso,
      size: 1,
      status: "creating"
    },
    backups: [oracleRow(full, "available")]
  })
  return { full, incr }
})

/**
 * Direction 3: our twins of Cinder's chain, same ids, names, created_at and
 * clock, in another root. The full goes through `backup`, the incremental
 * through `runBackup` on a record created by hand (keeping its milliseconds).
 */
const twinChain = memoByCase((c) => {
  const meta = makeMetaApi()
  return Effect.runPromise(
    Effect.gen(function* () {
      meta.state.current = c.withMeta ? META_FULL : null
      const full = yield* backup(
        {
          id: uuid(1, c, "full"),
          volume_id: VOLUME_ID,
          display_name: FULL.name,
          display_description: FULL.description,
          created_at: FULL.createdAt
        },
        paths.base(),
        options(c.compression, FULL.createdAt)
      )
      meta.state.current = c.withMeta ? META_INCR : null
      const catalog = yield* BackupCatalog
      yield* catalog.create(
        newBackupRecord({
          id: uuid(1, c, "incr"),
          volume_id: VOLUME_ID,
          volume_size_bytes: VOLUME_SIZE,
          parent_id: full.id,
          display_name: INCR.name,
          display_description: INCR.description,
          created_at: INCR.createdAt,
          status: "creating"
        })
      )
      const incr = yield* runBackup(uuid(1, c, "incr"), paths.edited(), options(c.compression, INCR.now))
      return { full, incr }
    }).pipe(Effect.provide(servicesAt(paths.twinRoot(), meta.layer)))
  )
})

/**
 * Direction 1: we import Cinder's records and restore, into files that do
 * not exist yet: the incremental, then the full alone.
 */
const ourRestoreOfCinder = memoByCase(async (c) => {
  const chain = await cinderChain(c)
  const meta = makeMetaApi()
  const incrTarget = paths.out(`cinder-${c.compression}-incr.img`)
  const fullTarget = paths.out(`cinder-${c.compression}-full.img`)
  return Effect.runPromise(
    Effect.gen(function* () {
      const catalog = yield* BackupCatalog
      yield* catalog.create(importRecord(chain.full))
      yield* catalog.create(importRecord(chain.incr))
      const incrResult = yield* restore(chain.incr.id, incrTarget)
      const incrPuts = meta.state.puts.splice(0)
      const fullResult = yield* restore(chain.full.id, fullTarget)
      const fullPuts = meta.state.puts.splice(0)
      return { incrTarget, fullTarget, incrResult, fullResult, incrPuts, fullPuts }
    }).pipe(Effect.provide(servicesAt(paths.cinderRoot(), meta.layer)))
  )
})

/** Direction 2: we back up (full + incremental) with `backup`. */
const ourChain = memoByCase((c) => {
  const meta = makeMetaApi()
  return Effect.runPromise(
    Effect.gen(function* () {
      meta.state.current = c.withMeta ? META_FULL : null
      const full = yield* backup(
        {
          id: uuid(2, c, "full"),
          volume_id: VOLUME_ID,
          display_name: FULL.name,
          display_description: FULL.description,
          created_at: FULL.createdAt
        },
        paths.base(),
        options(c.compression, FULL.createdAt)
      )
      meta.state.current = c.withMeta ? META_INCR : null
      const incr = yield* backup(
        {
          id: uuid(2, c, "incr"),
          volume_id: VOLUME_ID,
          parent_id: full.id,
          display_name: INCR.name,
          display_description: INCR.description,
          created_at: INCR.createdAt
        },
        paths.edited(),
        options(c.compression, INCR.now)
      )
      return { full, incr }
    }).pipe(Effect.provide(servicesAt(paths.oursRoot(), meta.layer)))
  )
})

/** Direction 2: Cinder restores our incremental (and its parent) into a zero-filled volume. */
const cinderRestoreOfOurs = memoByCase(async (c) => {
  const { full, incr } = await ourChain(c)
  const target = paths.out(`ours-${c.compression}-incr.img`)
  writeFileSync(target, new Uint8Array(VOLUME_SIZE))
  const result: OracleRestoreResult = await runOracle({
    op: "restore",
    backup_path: paths.oursRoot(),
    volume_path: target,
    volume_size_gib: 1,
    backup: toOracle(incr, "restoring"),
    backups: [toOracle(full, "available")]
  })
  return { full, incr, target, result }
})

// ---- helpers for assertions ---------------------------------------------------------

const expectSameBytes = (actual: Uint8Array, expected: Uint8Array, what: string) => {
  expect(actual.length, `${what}: length`).toBe(expected.length)
  if (Buffer.compare(actual, expected) !== 0) {
    const at = actual.findIndex((byte, i) => byte !== expected[i])
    let end = at
    while (end < actual.length && actual[end] !== expected[end]) end++
    expect.fail(`${what}: differs from byte ${at} (first run of differences ends at ${end})`)
  }
}

const read = (path: string) => new Uint8Array(readFileSync(path))

const fromPromise = <A>(promise: () => Promise<A>) => Effect.promise(promise)

const metasFor = (c: Case) => (c.withMeta ? [META_FULL, META_INCR] : [])

// ---- set-up -------------------------------------------------------------------------

const started = Date.now()

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "cb-golden-"))
  mkdirSync(paths.out(""), { recursive: true })
  writeFileSync(paths.base(), BASE)
  writeFileSync(paths.edited(), EDITED)
  // Start everything at once; the oracle queue keeps the CPUs busy.
  for (const c of CASES) {
    void cinderChain(c)
    void cinderRestoreOfOurs(c)
  }
})

afterAll(() => {
  console.log(`golden cinder: ${CASES.length * 3} oracle runs, ${((Date.now() - started) / 1000).toFixed(1)} s in all`)
  if (dir !== "") rmSync(dir, { recursive: true, force: true })
})

// ---- 1. Cinder → us ---------------------------------------------------------------------

describe("Cinder's backups restore here", () => {
  for (const c of CASES) {
    it.live(`${c.compression}: incremental and full restore bit-exact`, () =>
      Effect.gen(function* () {
        const { full, incr } = yield* fromPromise(() => cinderChain(c))
        expect(full.object_count).toBe(4) // 3 whole chunks + the 1000-byte tail
        // chunk 0: blocks 0 and 21; chunk 1: zeroed blocks 48-49, blocks 62-63;
        // chunk 2: blocks 64-65 (the run crossing 2 MiB, cut at the boundary), 95;
        // chunk 3: the short last block
        expect(incr.object_count).toBe(INCR_OBJECTS)
        const restored = yield* fromPromise(() => ourRestoreOfCinder(c))
        expect(restored.incrResult).toEqual({ backupId: incr.id, bytes: VOLUME_SIZE, backups: 2, sha256Checked: true })
        expectSameBytes(read(restored.incrTarget), EDITED, `${c.compression} incremental restored into a new file`)
        expectSameBytes(read(restored.fullTarget), BASE, `${c.compression} full restored into a new file`)
        expect(restored.incrPuts).toEqual(metasFor(c))
        expect(restored.fullPuts).toEqual(metasFor(c).slice(0, 1))
      })
    )
  }

  it.live("zlib: the incremental also restores over an existing zero-filled volume", () =>
    Effect.gen(function* () {
      const c = caseOf("zlib")
      const { full, incr } = yield* fromPromise(() => cinderChain(c))
      const target = paths.out("cinder-zlib-existing.img")
      writeFileSync(target, new Uint8Array(VOLUME_SIZE))
      yield* Effect.gen(function* () {
        const catalog = yield* BackupCatalog
        yield* catalog.create(importRecord(full))
        yield* catalog.create(importRecord(incr))
        yield* restore(incr.id, target, { volumeIsNew: false })
      }).pipe(Effect.provide(servicesAt(paths.cinderRoot(), makeMetaApi().layer)))
      expectSameBytes(read(target), EDITED, "zlib incremental restored over an existing volume")
    })
  )
})

// ---- 2. us → Cinder ---------------------------------------------------------------------

describe("our backups restore under Cinder", () => {
  for (const c of CASES) {
    it.live(`${c.compression}: Cinder restores our incremental bit-exact`, () =>
      Effect.gen(function* () {
        const { full, incr, target, result } = yield* fromPromise(() => cinderRestoreOfOurs(c))
        expect(full.object_count).toBe(4)
        expect(incr.object_count).toBe(INCR_OBJECTS)
        expect(result.restored).toBe(true)
        expectSameBytes(read(target), EDITED, `${c.compression}: Cinder's restore of our incremental`)
        expect(result.volume_meta).toEqual(metasFor(c))
      })
    )
  }
})

// ---- 3. byte-identical documents ------------------------------------------------------------

describe("documents are byte-identical to Cinder's", () => {
  for (const c of CASES) {
    it.live(`${c.compression}: _metadata and _sha256file of the full and the incremental`, () =>
      Effect.gen(function* () {
        const cinder = yield* fromPromise(() => cinderChain(c))
        const ours = yield* fromPromise(() => twinChain(c))
        for (const kind of ["full", "incr"] as const) {
          const theirs = cinder[kind]
          const mine = ours[kind]
          expect(mine.container).toBe(theirs.container)
          expect(mine.service_metadata).toBe(theirs.service_metadata)
          expect(mine.object_count).toBe(theirs.object_count)
          const prefix = theirs.service_metadata
          const cinderDir = join(paths.cinderRoot(), theirs.container)
          const ourDir = join(paths.twinRoot(), theirs.container)
          const names = readdirSync(cinderDir).filter((name) => name.startsWith(prefix)).sort()
          expect(readdirSync(ourDir).filter((name) => name.startsWith(prefix)).sort()).toEqual(names)
          for (const suffix of ["_metadata", "_sha256file"]) {
            const cinderText = readFileSync(join(cinderDir, prefix + suffix), "utf8")
            const ourText = readFileSync(join(ourDir, prefix + suffix), "utf8")
            expect(ourText, `${c.compression} ${kind} ${suffix}`).toBe(cinderText)
          }
          // Posix permissions as Cinder sets them (container 0770, objects 0660).
          const mode = (path: string) => (statSync(path).mode & 0o777).toString(8)
          expect(mode(ourDir), `${c.compression} ${kind} container mode`).toBe(mode(cinderDir))
          for (const name of names) expect(mode(join(ourDir, name)), `${name} mode`).toBe(mode(join(cinderDir, name)))
          const dataObjects = names.filter((name) => !name.endsWith("_metadata") && !name.endsWith("_sha256file"))
          expect(dataObjects.length).toBe(theirs.object_count)
          if (c.identicalObjects) {
            for (const name of dataObjects) {
              expectSameBytes(read(join(ourDir, name)), read(join(cinderDir, name)), `${c.compression} ${kind} ${name}`)
            }
          }
        }
        // What the documents say, beyond byte equality with Cinder.
        const full = JSON.parse(readFileSync(join(paths.cinderRoot(), cinder.full.container, `${cinder.full.service_metadata}_metadata`), "utf8"))
        const incr = JSON.parse(readFileSync(join(paths.cinderRoot(), cinder.incr.container, `${cinder.incr.service_metadata}_metadata`), "utf8"))
        expect(full.created_at).toBe("2026-11-26 04:04:46+00:00")
        expect(incr.created_at).toBe("2026-11-26 05:06:07.250000+00:00")
        expect(full.backup_name).toBe(FULL.name)
        expect(incr.backup_description).toBe(INCR.description)
        expect(incr.parent_id).toBe(cinder.full.id)
        const compressions = new Set((incr.objects as Array<Record<string, { compression: string }>>).flatMap((o) => Object.values(o).map((e) => e.compression)))
        // random pieces are stored raw; the zeroed blocks compress
        expect([...compressions].sort()).toEqual(c.compression === "none" ? ["none"] : [c.compression, "none"].sort())
      })
    )
  }
})

// ---- 4. volume_meta ------------------------------------------------------------------------

describe("volume_meta", () => {
  it.live("Cinder's get_metadata string reaches our VolumeMetadata.put, per backup of the chain", () =>
    Effect.gen(function* () {
      const c = caseOf("zstd")
      const cinder = yield* fromPromise(() => cinderChain(c))
      const stored = JSON.parse(
        readFileSync(join(paths.cinderRoot(), cinder.incr.container, `${cinder.incr.service_metadata}_metadata`), "utf8")
      )
      expect(stored.volume_meta).toBe(META_INCR)
      const restored = yield* fromPromise(() => ourRestoreOfCinder(c))
      expect(restored.incrPuts).toEqual([META_FULL, META_INCR])
      expect(restored.fullPuts).toEqual([META_FULL])
    })
  )

  it.live("our VolumeMetadata.get string reaches Cinder's put_metadata, per backup of the chain", () =>
    Effect.gen(function* () {
      const c = caseOf("zlib")
      const { result } = yield* fromPromise(() => cinderRestoreOfOurs(c))
      expect(result.volume_meta).toEqual([META_FULL, META_INCR])
    })
  )

  it.live("no volume_meta: nothing is put on either side", () =>
    Effect.gen(function* () {
      const c = caseOf("none")
      const restored = yield* fromPromise(() => ourRestoreOfCinder(c))
      expect(restored.incrPuts).toEqual([])
      const { result } = yield* fromPromise(() => cinderRestoreOfOurs(c))
      expect(result.volume_meta).toEqual([])
    })
  )
})
