/**
 * The bad-input corpus: one table of broken stores, documents, records,
 * chains, names and volumes. Each case must end in its own typed error (never
 * a defect) whose message names the backup or object, and must change
 * nothing: the store (every object's name and bytes; for posix, every file
 * under the test's directory) and the catalog (every record, statuses back
 * where they were) are compared before and after. A failing backup may only
 * add its own record, in status `error`, and none of its objects.
 *
 * Each case runs against the memory store and the posix store.
 */
import type { FileSystem } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, truncateSync } from "node:fs"
import { join } from "node:path"
import {
  backup,
  BackupCatalog,
  deleteBackup,
  layerMemory,
  layerMemoryCatalog,
  layerPosix,
  ObjectStore,
  restore,
  scan,
  scanProblems,
  type BackupCatalog as Catalog,
  type ScanOptions,
  type BackupOptions,
  type CodecPool
} from "../../src/index.js"
import { catalogSnapshot, storeSnapshot, treeSnapshot, typedFailure } from "../support/inspect.js"
import { patternedVolume as pattern, tamper, withTempDir, writeVolume, localServices } from "../support/layers.js"

type Services = ObjectStore | Catalog | FileSystem.FileSystem | CodecPool

const options: BackupOptions = { chunkSize: 4096, shaBlockSize: 1024 }
const utf8 = new TextEncoder()
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)


type Backend = "memory" | "posix"

interface Fixture {
  readonly dir: string
  readonly volumePath: string
  readonly target: string
  readonly backend: Backend
}

const editText = (id: string, suffix: string, change: (text: string) => string) =>
  tamper(id, suffix, (bytes) => utf8.encode(change(text(bytes))))

/** Name of the object `<prefix><suffix>` of backup `id`. */
const objectName = (id: string, suffix: string) =>
  Effect.map(Effect.flatMap(BackupCatalog, (c) => c.get(id)), (r) => `${r.service_metadata}${suffix}`)

const setRecord = (id: string, fields: Record<string, unknown>) =>
  Effect.flatMap(BackupCatalog, (catalog) => catalog.update(id, (r) => ({ ...r, ...fields })))

interface Case {
  readonly name: string
  /** compression of the fixture's two backups (default none, so a flipped byte is an md5 mismatch) */
  readonly compression?: string
  /** makes the bad input; the "before" snapshots are taken after it */
  readonly arrange?: (f: Fixture) => Effect.Effect<unknown, unknown, Services>
  /** what must fail; default: restore the incremental "inc" */
  readonly act?: (f: Fixture) => Effect.Effect<unknown, unknown, Services>
  readonly tag: string
  /** what the message must name */
  readonly mentions: ReadonlyArray<string> | ((f: Fixture) => Effect.Effect<ReadonlyArray<string>, unknown, ObjectStore | Catalog>)
  /** a backup case: the id of the new record, which must end `error` */
  readonly newRecord?: string
  /** the restore target must not even be created (the failure comes before any byte is written) */
  readonly targetUntouched?: boolean
  readonly backends?: ReadonlyArray<Backend>
}

const restoreInc: NonNullable<Case["act"]> = (f) => restore("inc", f.target)
/** How a message shows a name (JSON-quoted; a prefix of it, as it may go on). */
const shown = (name: string) => JSON.stringify(name).slice(0, Math.min(40, JSON.stringify(name).length - 1))

const badNames = [
  { label: "'..'", name: "../escape" },
  { label: "an absolute path", name: "/tmp/escape" },
  { label: "a NUL byte", name: "a\u0000b" },
  { label: "an over-long name", name: "n".repeat(2000) }
]

const cases: ReadonlyArray<Case> = [
  // --- corrupt objects
  {
    name: "a corrupt data object stored raw: md5 mismatch",
    arrange: () => tamper("full", "-00002", (b) => b.map((x, i) => (i === 100 ? x ^ 0xff : x))),
    tag: "IntegrityError",
    mentions: (f) => Effect.map(objectName("full", "-00002"), (name) => ["backup full", name, f.backend === "memory" ? "corrupt" : "md5"])
  },
  {
    name: "a corrupt data object stored zlib-compressed: decompression fails",
    compression: "zlib",
    arrange: () => tamper("full", "-00002", (b) => b.map((x, i) => (i === Math.floor(b.length / 2) ? x ^ 0xff : x))),
    tag: "CompressionError",
    mentions: () => Effect.map(objectName("full", "-00002"), (name) => [name, "zlib"])
  },
  {
    name: "a truncated data object",
    arrange: () => tamper("inc", "-00001", (b) => b.subarray(0, 10)),
    tag: "IntegrityError",
    mentions: () => Effect.map(objectName("inc", "-00001"), (name) => ["backup inc", name, "(10 bytes)"])
  },
  {
    name: "metadata recording another md5 for an object",
    arrange: () => editText("full", "_metadata", (t) => t.replace(/"md5": "[0-9a-f]{32}"/, `"md5": "${"0".repeat(32)}"`)),
    tag: "IntegrityError",
    mentions: () => Effect.map(objectName("full", "-00001"), (name) => ["backup full", name, "0".repeat(32)])
  },
  // --- malformed documents
  ...[
    { what: "truncated", change: (t: string) => t.slice(0, Math.floor(t.length / 2)) },
    { what: "not JSON", change: () => "not json" },
    { what: "empty", change: () => "" },
    { what: "a JSON array", change: () => "[]" },
    { what: "an offset of the wrong type", change: (t: string) => t.replace(/"offset": \d+/, '"offset": "zero"') },
    { what: "a negative length", change: (t: string) => t.replace(/"length": \d+/, '"length": -1') },
    { what: "a malformed md5", change: (t: string) => t.replace(/"md5": "[0-9a-f]{32}"/, '"md5": "xyz"') },
    { what: "objects that is not a list", change: (t: string) => t.replace(/"objects": \[/, '"objects": 7, "x": [') },
    { what: "an objects item with two names", change: (t: string) => t.replace(/\{\s*"(volume[^"]*)": \{/, '{"extra-name": {"compression": null, "length": 1, "md5": "' + "0".repeat(32) + '", "offset": 0}, "$1": {') },
    { what: "a backup_id of the wrong type", change: (t: string) => t.replace(/"backup_id": "full"/, '"backup_id": 3') },
    { what: "a missing key (volume_id)", change: (t: string) => t.replace(/"volume_id": "v",?/, "") }
  ].map(
    ({ what, change }): Case => ({
      name: `metadata: ${what}`,
      arrange: () => editText("full", "_metadata", change),
      tag: "InvalidBackup",
      mentions: ["backup full", "_metadata"],
      targetUntouched: true
    })
  ),
  {
    name: "metadata: not UTF-8",
    arrange: () => tamper("full", "_metadata", (b) => Uint8Array.from([...b.subarray(0, 20), 0xff, 0xfe, ...b.subarray(20)])),
    tag: "InvalidBackup",
    mentions: ["backup full", "_metadata", "UTF-8"],
    targetUntouched: true
  },
  {
    name: "metadata that belongs to another backup",
    arrange: () => editText("full", "_metadata", (t) => t.replace(/"backup_id": "full"/, '"backup_id": "other"')),
    tag: "InvalidBackup",
    mentions: ["backup full", "_metadata", "other"],
    targetUntouched: true
  },
  {
    name: "an unknown metadata version",
    arrange: () => editText("full", "_metadata", (t) => t.replace('"version": "1.0.0"', '"version": "2.0.0"')),
    tag: "UnsupportedVersion",
    mentions: ["backup full", "2.0.0"],
    targetUntouched: true
  },
  {
    name: "a missing metadata document",
    arrange: () => tamper("inc", "_metadata", () => null),
    tag: "ObjectNotFound",
    mentions: () => objectName("inc", "_metadata").pipe(Effect.map((name) => [name])),
    targetUntouched: true
  },
  // --- object list
  {
    name: "a missing data object",
    arrange: () => tamper("inc", "-00001", () => null),
    tag: "InvalidBackup",
    mentions: () => Effect.map(objectName("inc", "-00001"), (name) => ["backup inc", "missing", name]),
    targetUntouched: true
  },
  {
    name: "an extra object under the prefix",
    arrange: () =>
      Effect.gen(function* () {
        const record = yield* (yield* BackupCatalog).get("full")
        yield* (yield* ObjectStore).put(record.container!, `${record.service_metadata}-99999`, new Uint8Array([1]))
      }),
    tag: "InvalidBackup",
    mentions: () => Effect.map(objectName("full", "-99999"), (name) => ["backup full", "unexpected", name]),
    targetUntouched: true
  },
  {
    name: "metadata naming an object outside the prefix",
    arrange: () => editText("full", "_metadata", (t) => t.replace(/"(volume[^"]*-00001)": \{/, '"../../etc/passwd": {')),
    tag: "InvalidBackup",
    mentions: ["backup full", "missing ../../etc/passwd"],
    targetUntouched: true
  },
  // --- chains and records
  {
    name: "a missing parent",
    arrange: () => setRecord("inc", { parent_id: "gone" }),
    tag: "InvalidBackup",
    mentions: ["backup inc", "parent backup gone does not exist"],
    targetUntouched: true
  },
  {
    name: "a cycle in the parent chain",
    arrange: () => setRecord("full", { parent_id: "inc" }),
    tag: "InvalidBackup",
    mentions: ["backup inc", "cycle"],
    targetUntouched: true
  },
  {
    name: "a record with no container or prefix",
    arrange: () => setRecord("full", { container: null, service_metadata: null }),
    tag: "InvalidBackup",
    mentions: ["backup full", "no container"],
    targetUntouched: true
  },
  {
    name: "a record whose container does not exist",
    arrange: () => setRecord("full", { container: "no-such-container" }),
    tag: "ContainerNotFound",
    mentions: ["no-such-container"],
    targetUntouched: true
  },
  ...badNames.flatMap(({ label, name }): Array<Case> => [
    {
      name: `a record whose container has ${label}`,
      arrange: () => setRecord("full", { container: name }),
      tag: "InvalidObjectName",
      mentions: [shown(name)],
      targetUntouched: true
    },
    {
      name: `a record whose object prefix has ${label}`,
      arrange: () => setRecord("inc", { service_metadata: name }),
      tag: "InvalidObjectName",
      mentions: [shown(name)],
      targetUntouched: true
    },
    {
      name: `a new backup into a container with ${label}`,
      act: (f) => backup({ id: "x", volume_id: "v", container: name }, f.volumePath, options),
      tag: "InvalidObjectName",
      mentions: [shown(name)],
      newRecord: "x"
    }
  ]),
  // --- incremental refusals: the new record ends `error`, the parent is unchanged
  {
    name: "an incremental whose parent's sha256 file has another block size",
    arrange: () => editText("inc", "_sha256file", (t) => t.replace('"chunk_size": 1024', '"chunk_size": 2048')),
    act: (f) => backup({ id: "x", volume_id: "v", parent_id: "inc" }, f.volumePath, options),
    tag: "InvalidBackup",
    mentions: ["backup x", "hash block size has changed", "old 2048"],
    newRecord: "x"
  },
  {
    name: "an incremental with another sha block size than its parent",
    act: (f) => backup({ id: "x", volume_id: "v", parent_id: "inc" }, f.volumePath, { ...options, shaBlockSize: 2048 }),
    tag: "InvalidBackup",
    mentions: ["backup x", "hash block size has changed", "new 2048, old 1024"],
    newRecord: "x"
  },
  {
    name: "an incremental of a volume that grew",
    arrange: (f) => writeVolume(f.volumePath, pattern(30_000)),
    act: (f) => backup({ id: "x", volume_id: "v", parent_id: "inc" }, f.volumePath, options),
    tag: "InvalidRequest",
    mentions: ["volume size increased since backup inc"]
  },
  {
    name: "an incremental whose parent's sha256 file is truncated",
    arrange: () => tamper("inc", "_sha256file", (b) => b.subarray(0, 50)),
    act: (f) => backup({ id: "x", volume_id: "v", parent_id: "inc" }, f.volumePath, options),
    tag: "InvalidBackup",
    mentions: () => Effect.map(objectName("inc", "_sha256file"), (name) => ["backup inc", name]),
    newRecord: "x"
  },
  {
    name: "an incremental whose parent's sha256 file is missing",
    arrange: () => tamper("inc", "_sha256file", () => null),
    act: (f) => backup({ id: "x", volume_id: "v", parent_id: "inc" }, f.volumePath, options),
    tag: "ObjectNotFound",
    mentions: () => Effect.map(objectName("inc", "_sha256file"), (name) => [name]),
    newRecord: "x"
  },
  {
    name: "an incremental on a missing parent",
    act: (f) => backup({ id: "x", volume_id: "v", parent_id: "nobody" }, f.volumePath, options),
    // refused before a record exists
    tag: "InvalidRequest",
    mentions: ["parent backup nobody does not exist"]
  },
  {
    name: "an incremental on a parent that is not available",
    arrange: () => Effect.flatMap(BackupCatalog, (c) => c.transition("inc", ["available"], "error")),
    act: (f) => backup({ id: "x", volume_id: "v", parent_id: "inc" }, f.volumePath, options),
    tag: "InvalidRequest",
    mentions: ["parent backup inc is error, not available"]
  },
  // --- volumes
  {
    name: "a volume that is a FIFO",
    arrange: (f) => Effect.sync(() => execFileSync("mkfifo", [join(f.dir, "fifo")])),
    act: (f) => backup({ id: "x", volume_id: "v" }, join(f.dir, "fifo"), options),
    tag: "VolumeError",
    mentions: (f) => Effect.succeed([join(f.dir, "fifo"), "FIFO"])
  },
  {
    name: "a volume that does not exist",
    act: (f) => backup({ id: "x", volume_id: "v" }, join(f.dir, "nope.img"), options),
    tag: "VolumeError",
    mentions: (f) => Effect.succeed([join(f.dir, "nope.img")])
  },
  {
    name: "an empty volume",
    arrange: (f) => writeVolume(join(f.dir, "empty.img"), new Uint8Array(0)),
    act: (f) => backup({ id: "x", volume_id: "v" }, join(f.dir, "empty.img"), options),
    tag: "InvalidRequest",
    mentions: (f) => Effect.succeed([join(f.dir, "empty.img"), "empty"])
  },
  // --- restore of something not restorable
  {
    name: "a restore of a backup that is not available",
    arrange: () => Effect.flatMap(BackupCatalog, (c) => c.transition("inc", ["available"], "error")),
    tag: "InvalidRequest",
    mentions: ["backup inc is error"],
    targetUntouched: true
  },
  {
    name: "a restore of a backup that does not exist",
    act: (f) => restore("nobody", f.target),
    tag: "BackupNotFound",
    mentions: ["backup nobody"],
    targetUntouched: true
  },
  // --- scan of a store whose catalog is lost (into an empty catalog; what it leaves out is the failure)
  {
    name: "scan: metadata that claims another backup id than its object name",
    arrange: () => copyBackup("full", "twin"),
    act: scanAfresh,
    tag: "ScanFoundProblems",
    mentions: ["backup twin", "metadata belongs to backup full"]
  },
  {
    name: "scan: metadata whose object names escape the root",
    arrange: () => editText("full", "_metadata", (t) => t.replace(/"(volume_v[^"]*-0000)(\d)": \{/g, '"../../$1$2": {')),
    act: scanAfresh,
    tag: "ScanFoundProblems",
    mentions: ["backup full", 'invalid container or object name "../../volume_v', "and 1 more"]
  },
  {
    name: "scan: a full backup whose metadata names its own incremental as parent (a cycle)",
    arrange: () => editText("full", "_metadata", (t) => t.replace('"parent_id": null', '"parent_id": "inc"')),
    act: scanAfresh,
    tag: "ScanFoundProblems",
    mentions: ["the parent chain is a cycle: ", "full -> inc", "and 1 more"]
  },
  {
    name: "scan: an incremental whose parent's sha256 file is missing",
    arrange: () => tamper("full", "_sha256file", () => null),
    act: scanAfresh,
    tag: "ScanFoundProblems",
    mentions: ["backup full", "_sha256file", "and 1 more"]
  },
  {
    name: "scan: a container named outside the root",
    act: () => scanAfresh({ container: "../escape" }),
    tag: "InvalidObjectName",
    mentions: ['"../escape"']
  }
]

/** A scan into an empty catalog (the fixture's stays as it was) that fails with what it left out. */
function scanAfresh(options: ScanOptions | Fixture = {}) {
  return scan("dir" in options ? {} : options).pipe(
    Effect.flatMap((report) => {
      const problems = scanProblems(report)
      return problems === undefined ? Effect.succeed(report) : Effect.fail(problems)
    }),
    Effect.provide(layerMemoryCatalog())
  )
}

/** Every object of backup `id`, copied under the prefix of backup `as` (same container, `_backup_<as>`). */
function copyBackup(id: string, as: string) {
  return Effect.gen(function* () {
    const store = yield* ObjectStore
    const record = yield* (yield* BackupCatalog).get(id)
    const prefix = record.service_metadata!
    for (const name of yield* store.list(record.container!, prefix)) {
      yield* store.put(record.container!, name.replace(`_backup_${id}`, `_backup_${as}`), yield* store.get(record.container!, name))
    }
  })
}

/** The store and catalog, and the FileSystem, for one backend rooted in `dir`. */
const servicesFor = (backend: Backend, dir: string) =>
  Layer.mergeAll(
    backend === "memory" ? layerMemory() : layerPosix({ root: join(dir, "store") }),
    layerMemoryCatalog()
  ).pipe(Layer.provideMerge(localServices))

/** Everything a case could change: objects, files under the test directory (but the restore target), records. */
const snapshot = (f: Fixture) =>
  Effect.gen(function* () {
    const catalog = yield* catalogSnapshot
    const containers = ["volumebackups", ...Object.values(catalog).flatMap((r) => (r.container === null ? [] : [r.container]))]
    const objects = yield* storeSnapshot(yield* ObjectStore, containers)
    const { [f.target.slice(f.dir.length + 1)]: _, ...files } = treeSnapshot(f.dir)
    return { objects, files, catalog }
  })

/** A volume with a full backup "full" and an incremental "inc". */
const fixture = (f: Fixture, compression: string) =>
  Effect.gen(function* () {
    if (f.backend === "posix") mkdirSync(join(f.dir, "store"))
    const volume = pattern(20_000)
    yield* writeVolume(f.volumePath, volume)
    yield* backup({ id: "full", volume_id: "v" }, f.volumePath, { ...options, compression })
    volume.fill(5, 9000, 9500)
    yield* writeVolume(f.volumePath, volume)
    yield* backup({ id: "inc", volume_id: "v", parent_id: "full" }, f.volumePath, { ...options, compression })
  })

const runCase = (c: Case, backend: Backend) =>
  withTempDir((dir) => {
    const f: Fixture = { dir, volumePath: join(dir, "vol.img"), target: join(dir, "out.img"), backend }
    return Effect.gen(function* () {
      yield* fixture(f, c.compression ?? "none")
      if (c.arrange !== undefined) yield* c.arrange(f)
      const before = yield* snapshot(f)
      const exit = yield* Effect.exit((c.act ?? restoreInc)(f))
      const error = typedFailure(exit) as { readonly _tag: string; readonly message: string }
      expect(error._tag).toBe(c.tag)
      const mentions = Array.isArray(c.mentions) ? c.mentions : yield* (c.mentions as Exclude<Case["mentions"], ReadonlyArray<string>>)(f)
      for (const part of mentions) expect(error.message).toContain(part)
      const after = yield* snapshot(f)
      expect(after.objects).toStrictEqual(before.objects)
      expect(after.files).toStrictEqual(before.files)
      if (c.newRecord === undefined) {
        expect(after.catalog).toStrictEqual(before.catalog)
      } else {
        const { [c.newRecord]: added, ...rest } = after.catalog
        expect(rest).toStrictEqual(before.catalog)
        expect(added?.status).toBe("error")
        expect(added?.fail_reason).toBe(error.message)
      }
      if (c.targetUntouched === true) expect(existsSync(f.target)).toBe(false)
    }).pipe(Effect.provide(servicesFor(backend, dir)))
  })

describe.each(["memory", "posix"] as const)("bad-input corpus (%s store)", (backend) => {
  it.effect.each(cases.filter((c) => c.backends === undefined || c.backends.includes(backend)))("$name", (c) => runCase(c, backend))
})

describe.each(["memory", "posix"] as const)("bad names straight against the store (%s)", (backend) => {
  const calls = (name: string) =>
    [
      ["ensureContainer", (s: ObjectStore) => s.ensureContainer(name)],
      ["list", (s: ObjectStore) => s.list(name, "")],
      ["put (container)", (s: ObjectStore) => s.put(name, "o", new Uint8Array([1]))],
      ["put (object)", (s: ObjectStore) => s.put("c", name, new Uint8Array([1]))],
      ["get (container)", (s: ObjectStore) => s.get(name, "o")],
      ["get (object)", (s: ObjectStore) => s.get("c", name)],
      ["delete (container)", (s: ObjectStore) => s.delete(name, "o")],
      ["delete (object)", (s: ObjectStore) => s.delete("c", name)]
    ] as const
  const table = [...badNames, { label: "an empty name", name: "" }, { label: "a '.' segment", name: "a/./b" }, { label: "a backslash", name: "a\\b" }]
    .flatMap(({ label, name }) => calls(name).map(([operation, run]) => ({ label, name, operation, run })))
  it.effect.each(table)("$operation with $label is InvalidObjectName and touches nothing", ({ name, run }) =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        mkdirSync(join(dir, "store", "c"), { recursive: true })
        const store = yield* ObjectStore
        yield* store.ensureContainer("c")
        yield* store.put("c", "o", new Uint8Array([7]))
        const before = { files: treeSnapshot(dir), objects: yield* storeSnapshot(store, ["c"]) }
        const error = typedFailure(yield* Effect.exit(run(store)))
        expect(error._tag).toBe("InvalidObjectName")
        expect(error).toMatchObject({ name })
        expect(error.message).toContain(shown(name))
        expect({ files: treeSnapshot(dir), objects: yield* storeSnapshot(store, ["c"]) }).toStrictEqual(before)
      }).pipe(Effect.provide(servicesFor(backend, dir)))
    )
  )
})

describe("backup ids that extend one another (b, b1) in one container and second", () => {
  // Object names are `<prefix>-NNNNN`, `<prefix>_metadata`, `<prefix>_sha256file`,
  // and the prefix ends with the backup id. With ids "b" and "b1", the same
  // volume, container and second, "b"'s prefix is a prefix of every name of
  // "b1": listing "b" by prefix also returns "b1"'s objects.
  const bothBackups = (f: Fixture) =>
    Effect.gen(function* () {
      const now = new Date("2026-01-02T03:04:05Z")
      yield* writeVolume(f.volumePath, pattern(9000))
      yield* backup({ id: "b", volume_id: "v" }, f.volumePath, { ...options, now })
      yield* backup({ id: "b1", volume_id: "v" }, f.volumePath, { ...options, now })
    })

  const inMemory = (body: (f: Fixture) => Effect.Effect<void, unknown, Services>) =>
    withTempDir((dir) => {
      const f: Fixture = { dir, volumePath: join(dir, "vol.img"), target: join(dir, "out.img"), backend: "memory" }
      return Effect.zipRight(bothBackups(f), body(f)).pipe(Effect.provide(servicesFor("memory", dir)))
    })

  it.effect("restoring b does not see b1's objects", () =>
    inMemory((f) => Effect.asVoid(restore("b", f.target)))
  )

  it.effect("deleting b leaves b1 whole", () =>
    inMemory((f) =>
      Effect.gen(function* () {
        yield* deleteBackup("b")
        const b1 = yield* (yield* BackupCatalog).get("b1")
        expect(yield* (yield* ObjectStore).list(b1.container!, b1.service_metadata!)).toHaveLength(5)
        yield* restore("b1", f.target)
        expect(Buffer.from(readFileSync(f.target)).equals(Buffer.from(pattern(9000)))).toBe(true)
      })
    )
  )
})

describe("a volume that shrinks while it is backed up", () => {
  // A store decorator truncates the volume file at the first object written:
  // 3072 chunks become 3.5. Reading then ends early, at the new end of file.
  // (Small chunks are read 4 MiB to a slot: the volume spans three slots, so
  // reading is still under way when the first object is written.)
  const shrinking = (f: Fixture) =>
    Effect.gen(function* () {
      yield* writeVolume(f.volumePath, pattern(3 * 1024 * 4096))
      const store = yield* ObjectStore
      let puts = 0
      const truncating: ObjectStore = {
        ...store,
        put: (c, o, b, x) =>
          Effect.suspend(() => {
            if (puts++ === 0) truncateSync(f.volumePath, 3 * 4096 + 100)
            return store.put(c, o, b, x)
          })
      }
      return yield* Effect.exit(
        backup({ id: "s", volume_id: "v" }, f.volumePath, { ...options, compression: "none", concurrency: 1 }).pipe(
          Effect.provideService(ObjectStore, truncating)
        )
      )
    })

  it.effect("whatever the outcome, an available backup's sha256 list and objects describe the same bytes", () =>
    withTempDir((dir) => {
      const f: Fixture = { dir, volumePath: join(dir, "vol.img"), target: join(dir, "out.img"), backend: "memory" }
      return Effect.gen(function* () {
        const exit = yield* shrinking(f)
        const record = yield* (yield* BackupCatalog).get("s")
        if (Exit.isFailure(exit)) {
          expect(record.status).toBe("error")
          return
        }
        const store = yield* ObjectStore
        const doc = (suffix: string) =>
          Effect.map(store.get(record.container!, `${record.service_metadata}${suffix}`), (b) => JSON.parse(text(b)))
        const sha = (yield* doc("_sha256file")) as { sha256s: Array<string> }
        const metadata = (yield* doc("_metadata")) as { objects: Array<Record<string, { offset: number; length: number }>> }
        const covered = metadata.objects.map((item) => Object.values(item)[0]!).reduce((end, o) => Math.max(end, o.offset + o.length), 0)
        expect(sha.sha256s.length).toBe(Math.ceil(covered / 1024))
        expect(record.object_count).toBe(metadata.objects.length)
      }).pipe(Effect.provide(servicesFor("memory", dir)))
    })
  )

  it.effect("the backup fails with VolumeError, ends `error` and leaves no object", () =>
    withTempDir((dir) => {
      const f: Fixture = { dir, volumePath: join(dir, "vol.img"), target: join(dir, "out.img"), backend: "memory" }
      return Effect.gen(function* () {
        const exit = yield* shrinking(f)
        const record = yield* (yield* BackupCatalog).get("s")
        expect(record.status).toBe("error")
        expect(typedFailure(exit)._tag).toBe("VolumeError")
        expect(yield* (yield* ObjectStore).list(record.container!, record.service_metadata!)).toEqual([])
      }).pipe(Effect.provide(servicesFor("memory", dir)))
    })
  )
})
