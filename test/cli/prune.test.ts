/**
 * The CLI's prune and list --tree end to end, on a repository (posix store,
 * SQLite catalog) holding a history made through the library with the
 * backup times it would have had (a backup's created_at is a field of its
 * request): prune deletes what the model says and every kept backup
 * verifies --full; --dry-run changes no byte of the store or the catalog;
 * a kill -9 mid-prune leaves every remaining chain restorable and the next
 * prune finishes; list --tree draws the chains with stored bytes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { lstatSync, mkdirSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { backup, BackupCatalog, layerPosix, layerSqliteCatalog, newBackupRecord, type BackupRecord } from "../../src/index.js"
import { cli, startCli } from "../support/cli.js"
import { catalogSnapshot, treeSnapshot } from "../support/inspect.js"
import { localServices, patternedVolume, withTempDir, writeVolume } from "../support/layers.js"
import { modelDeleted } from "../support/retentionModel.js"

const uuid = (volume: number, n: number) => `0000000${volume}-0000-4000-8000-${String(n).padStart(12, "0")}`
const volumeId = (volume: number) => `5d1c3a2e-0b5f-4f6e-9d3c-00000000000${volume}`

/** Per volume: a backup every 6 hours from 2025-01-01, a full every `fullEvery`, else an incremental of the one before. */
const history = (volumes: number, perVolume: number, fullEvery: number): ReadonlyArray<BackupRecord> =>
  Array.from({ length: volumes }, (_, v) =>
    Array.from({ length: perVolume }, (_, i) =>
      newBackupRecord({
        id: uuid(v, i),
        volume_id: volumeId(v),
        parent_id: i % fullEvery === 0 ? null : uuid(v, i - 1),
        volume_size_bytes: 64 * 1024,
        created_at: new Date(Date.UTC(2025, 0, 1, 6 * i, 7 * v))
      })
    )
  ).flat()

const repoServices = (repo: string) =>
  Layer.mergeAll(layerPosix({ root: join(repo, "store") }), layerSqliteCatalog(join(repo, "catalog.sqlite"))).pipe(Layer.provideMerge(localServices))

/** Makes the history in `repo` for real: 4 KiB objects, so each backup has 16 data objects. */
const makeRepo = (repo: string, records: ReadonlyArray<BackupRecord>) =>
  Effect.gen(function* () {
    const path = join(repo, "..", "volume.img")
    for (const [i, r] of records.entries()) {
      yield* writeVolume(path, patternedVolume(r.volume_size_bytes, i + 1, 700))
      yield* backup({ id: r.id, volume_id: r.volume_id, parent_id: r.parent_id, created_at: r.created_at }, path, {
        chunkSize: 4096,
        shaBlockSize: 1024,
        compression: "zlib",
        now: r.created_at
      })
    }
  }).pipe(Effect.provide(repoServices(repo)))

const recordsIn = (repo: string) => Effect.flatMap(BackupCatalog, (c) => c.list()).pipe(Effect.provide(repoServices(repo)))

const withRepo = <A, E>(records: ReadonlyArray<BackupRecord>, use: (repo: string, run: (...args: Array<string>) => ReturnType<typeof cli>) => Effect.Effect<A, E>) =>
  withTempDir((dir) => {
    const repo = join(dir, "repo")
    mkdirSync(repo)
    const run = (...args: Array<string>) => cli(["--repo", repo, ...args], { CHUNKED_BACKUP_LEASE_SECONDS: "1" })
    return Effect.zipRight(makeRepo(repo, records), use(repo, run))
  })

/** Every available backup of the repository verifies --full through the CLI. */
const everyAvailableVerifies = (repo: string, run: (...args: Array<string>) => ReturnType<typeof cli>) =>
  Effect.gen(function* () {
    for (const r of yield* recordsIn(repo)) {
      if (r.status !== "available") continue
      const verified = yield* run("verify", r.id, "--full")
      expect({ id: r.id, code: verified.code, err: verified.stderr }).toEqual({ id: r.id, code: 0, err: expect.any(String) })
    }
  })

const deletedIds = (records: ReadonlyArray<BackupRecord>) => records.filter((r) => r.status === "deleted").map((r) => r.id).sort()

describe("CLI prune", () => {
  it.live("--dry-run changes nothing; prune deletes what the model says and every kept backup verifies --full", () =>
    withRepo(history(2, 10, 4), (repo, run) =>
      Effect.gen(function* () {
        const records = yield* recordsIn(repo)
        const storeBefore = treeSnapshot(join(repo, "store"))
        const catalogBefore = yield* catalogSnapshot.pipe(Effect.provide(repoServices(repo)))
        const dry = yield* run("prune", "--keep-daily", "2", "--keep-last", "1", "--dry-run")
        expect(dry.code).toBe(0)
        expect(dry.stdout).toMatch(/^VOLUME +BACKUP +CREATED \(UTC\) +STATUS +DECISION +REASON/)
        expect(dry.stdout).toMatch(/would remove +no rule keeps it/)
        expect(dry.stdout).toMatch(/keep \(ancestor\) +needed by /)
        expect(treeSnapshot(join(repo, "store"))).toEqual(storeBefore)
        expect(yield* catalogSnapshot.pipe(Effect.provide(repoServices(repo)))).toEqual(catalogBefore)

        const expected = [...modelDeleted(records, { counts: { daily: 2, last: 1 } }, new Date())].sort()
        expect(expected.length).toBeGreaterThan(0)
        const pruned = yield* run("--json", "prune", "--keep-daily", "2", "--keep-last", "1")
        expect(pruned.code).toBe(0)
        const report = JSON.parse(pruned.stdout) as { plan: Array<{ id: string; decision: string }>; deleted: Array<{ backupId: string }> }
        expect(report.deleted.map((d) => d.backupId).sort()).toEqual(expected)
        expect(report.plan.filter((e) => e.decision === "remove").map((e) => e.id).sort()).toEqual(expected)
        expect(deletedIds(yield* recordsIn(repo))).toEqual(expected)
        yield* everyAvailableVerifies(repo, run)
        // Nothing of the deleted backups is left in the store: their container directories are gone.
        for (const id of expected) expect(() => lstatSync(join(repo, "store", id.slice(0, 2), id.slice(2, 4), id))).toThrow()
      })
    )
  )

  it.live("refuses a prune without a keep rule, or with a bad duration or count, with exit 3 and nothing deleted", () =>
    withRepo(history(1, 2, 2), (repo, run) =>
      Effect.gen(function* () {
        const none = yield* run("prune")
        expect(none.code).toBe(3)
        expect(none.stderr).toMatch(/needs at least one keep rule/)
        expect((yield* run("prune", "--keep-last", "0")).code).toBe(3)
        const badWithin = yield* run("prune", "--keep-within", "2w")
        expect(badWithin.code).toBe(3)
        expect(badWithin.stderr).toMatch(/--keep-within "2w" is not a duration/)
        const badCount = yield* run("prune", "--keep-daily", "-5")
        expect(badCount.code).toBe(3)
        expect(badCount.stderr).toMatch(/--keep-daily must be/)
        expect(deletedIds(yield* recordsIn(repo))).toEqual([])
      })
    )
  )

  it.live("kill -9 mid-prune: every remaining chain restores (verify --full) and the next prune finishes the job", () =>
    withRepo(history(1, 32, 8), (repo, run) =>
      Effect.gen(function* () {
        const records = yield* recordsIn(repo)
        const expected = [...modelDeleted(records, { counts: { last: 1 } }, new Date())].sort()
        expect(expected).toHaveLength(24)
        const running = startCli(["--repo", repo, "prune", "--keep-last", "1"], { CHUNKED_BACKUP_LEASE_SECONDS: "1" })
        // Killed as soon as it says it deleted a first backup: the next delete is under way.
        yield* Effect.async<void>((resume) => {
          const onData = (text: string) => {
            if (!text.includes("deleted ")) return
            running.child.stdout!.off("data", onData)
            running.child.kill("SIGKILL")
            resume(Effect.void)
          }
          running.child.stdout!.on("data", onData)
        })
        const killed = yield* Effect.promise(() => running.result)
        expect(killed.signal).toBe("SIGKILL")
        const afterKill = yield* recordsIn(repo)
        expect(deletedIds(afterKill).length).toBeLessThan(expected.length)
        yield* everyAvailableVerifies(repo, run)
        // The killed delete's lease (1 s here) runs out; prune settles it first, then deletes the rest.
        yield* Effect.sleep("1500 millis")
        const again = yield* run("prune", "--keep-last", "1")
        expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: "" })
        expect(deletedIds(yield* recordsIn(repo))).toEqual(expected)
        yield* everyAvailableVerifies(repo, run)
      })
    )
  )
})

/** The bytes of every file of a posix backup: its container directory holds only its objects. */
const filesBytes = (dir: string) => readdirSync(dir).reduce((sum, name) => sum + lstatSync(join(dir, name)).size, 0)

interface TreeNode {
  readonly id: string
  readonly parent_id: string | null
  readonly stored_bytes: number | null
  readonly stored_bytes_source: string
  readonly compression_ratio: number | null
  readonly children: ReadonlyArray<TreeNode>
}

describe("CLI list --tree", () => {
  it.live("draws each volume's chains, with stored bytes from the store's listing and the ratio; --json nests them the same", () =>
    // Volume 0: a full with two incrementals on it (one of them with its own), then a second full.
    withRepo(
      [
        ...history(1, 3, 3),
        newBackupRecord({ id: uuid(0, 7), volume_id: volumeId(0), parent_id: uuid(0, 0), volume_size_bytes: 65536, created_at: new Date(Date.UTC(2025, 0, 2)) }),
        newBackupRecord({ id: uuid(0, 8), volume_id: volumeId(0), parent_id: null, volume_size_bytes: 65536, created_at: new Date(Date.UTC(2025, 0, 3)) }),
        ...history(2, 1, 1).slice(1)
      ],
      (repo, run) =>
        Effect.gen(function* () {
          const text = yield* run("list", "--tree")
          expect(text.code).toBe(0)
          const lines = text.stdout.split("\n")
          const at = (id: string) => lines.find((l) => l.includes(id))!
          expect(lines[0]).toBe(`volume ${volumeId(0)}: 2 chain(s)`)
          expect(lines[1]).toMatch(/^BACKUP +TYPE +STATUS +CREATED \(UTC\) +SIZE +OBJECTS +STORED +RATIO$/)
          expect(at(uuid(0, 0))).toMatch(new RegExp(`^${uuid(0, 0)} +full +available +2025-01-01 00:00:00 +64\\.0 KiB +16 +[\\d.]+ KiB +\\d+\\.\\d\\dx$`))
          expect(at(uuid(0, 1))).toMatch(new RegExp(`^├─ ${uuid(0, 1)} +incr `))
          expect(at(uuid(0, 2))).toMatch(new RegExp(`^│  └─ ${uuid(0, 2)} +incr `))
          expect(at(uuid(0, 7))).toMatch(new RegExp(`^└─ ${uuid(0, 7)} +incr `))
          expect(at(uuid(0, 8))).toMatch(new RegExp(`^${uuid(0, 8)} +full `))
          expect(text.stdout).toContain(`volume ${volumeId(1)}: 1 chain(s)`)
          expect(lines.at(-2)).toBe("stored bytes from the store's listing; RATIO = volume bytes in the data objects / their stored bytes")

          const json = yield* run("--json", "list", "--tree")
          const parsed = JSON.parse(json.stdout) as { volumes: Array<{ volume_id: string; chains: Array<TreeNode> }> }
          expect(parsed.volumes.map((v) => v.volume_id)).toEqual([volumeId(0), volumeId(1)])
          const [first, second] = parsed.volumes[0]!.chains
          expect(first!.id).toBe(uuid(0, 0))
          expect(first!.children.map((c) => c.id)).toEqual([uuid(0, 1), uuid(0, 7)])
          expect(first!.children[0]!.children.map((c) => c.id)).toEqual([uuid(0, 2)])
          expect(second!.children).toEqual([])
          // Stored bytes are the files' sizes; the full backup's ratio is its 64 KiB over its data objects' bytes.
          const dir = (id: string) => join(repo, "store", id.slice(0, 2), id.slice(2, 4), id)
          expect(first!.stored_bytes).toBe(filesBytes(dir(uuid(0, 0))))
          expect(first!.stored_bytes_source).toBe("store listing")
          const docs = readdirSync(dir(uuid(0, 0))).filter((n) => n.endsWith("_metadata") || n.endsWith("_sha256file"))
          const dataBytes = filesBytes(dir(uuid(0, 0))) - docs.reduce((s, n) => s + lstatSync(join(dir(uuid(0, 0)), n)).size, 0)
          expect(first!.compression_ratio).toBeCloseTo(65536 / dataBytes, 3)

          const shown = yield* run("--json", "show", uuid(0, 0))
          expect(JSON.parse(shown.stdout)).toMatchObject({ stored_bytes: first!.stored_bytes, compression_ratio: first!.compression_ratio, stored_bytes_source: "store listing" })
        })
    )
  )
})
