/**
 * `chunked-backup backup <nbd-uri>` against real servers (qemu-nbd, nbdkit)
 * started by the tests: a qcow2 with data and holes restores to what
 * `qemu-img convert -O raw` gives; a chain of three dirty-bitmap
 * incrementals restores bit-exact here and under Cinder; a server killed
 * mid-backup leaves no objects; refused requests exit 3, broken servers 11.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { runOracle, type OracleBackupResult, type OracleRecord } from "../support/cinderOracle.js"
import { cli, startCli } from "../support/cli.js"
import { withTempDir } from "../support/layers.js"
import { haveNbdServers, nbdkit, qemuNbd, qemuWrite, tool } from "../support/nbdServers.js"

const MiB = 1024 * 1024
const SIZE = 64 * MiB
const chunking = ["--chunk-size", String(4 * MiB), "--sha-block-size", "65536"]

/** A record as `--json backup` prints it: the fields Cinder's records have. */
type Shown = Omit<OracleBackupResult, "progress" | "status">

/** Files under `dir`, recursively (the posix store's objects). */
const filesUnder = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))

const rawOf = (image: string, out: string) => {
  tool("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", image, out])
  return readFileSync(out)
}

describe.skipIf(!haveNbdServers)("backup from NBD", () => {
  it.live(
    "a qcow2 with data and holes, through qemu-nbd: the restore equals qemu-img convert -O raw, and the same URI finds its chain",
    () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
          const image = join(dir, "vm.qcow2")
          tool("qemu-img", ["create", "-q", "-f", "qcow2", image, String(SIZE)])
          qemuWrite(image, [{ at: MiB, length: 3 * MiB, pattern: 0x5a }, { at: 20 * MiB + 4096, length: 100_000, pattern: 0x11 }, { at: 40 * MiB, length: 2 * MiB }])
          const server = yield* qemuNbd(image, join(dir, "nbd.sock"))
          const full = yield* cli(["--json", "backup", server.uri, ...chunking, "--compression", "zstd"], env)
          expect(full.code, full.stderr).toBe(0)
          const record = JSON.parse(full.stdout) as Shown
          expect(record.size).toBe(1)
          const out = join(dir, "out.img")
          const restored = yield* cli(["restore", record.id, out], env)
          expect(restored.code, restored.stderr).toBe(0)
          expect(readFileSync(out).equals(rawOf(image, join(dir, "raw.img")))).toBe(true)
          // The same URI is the same volume: --incremental finds the full backup.
          const again = yield* cli(["--json", "backup", server.uri, "--incremental", ...chunking], env)
          expect(again.code, again.stderr).toBe(0)
          expect(JSON.parse(again.stdout)).toMatchObject({ parent_id: record.id, object_count: 0 })
        })
      ).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "a chain of three dirty-bitmap incrementals restores bit-exact, and Cinder restores it too",
    () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
          const image = join(dir, "vm.qcow2")
          const socket = join(dir, "nbd.sock")
          tool("qemu-img", ["create", "-q", "-f", "qcow2", image, String(SIZE)])
          qemuWrite(image, [{ at: 0, length: 10 * MiB, pattern: 0x21 }, { at: 30 * MiB, length: 5 * MiB, pattern: 0x22 }])
          // The bitmap starts with the full backup.
          tool("qemu-img", ["bitmap", "--add", image, "since-last"])
          const backupOnce = (extra: ReadonlyArray<string>) =>
            Effect.scoped(
              Effect.gen(function* () {
                const server = yield* qemuNbd(image, socket, { bitmap: "since-last" })
                const r = yield* cli(["--json", "backup", server.uri, "--volume-id", "5d1c3a2e-0b5f-4f6e-9d3c-2a1b0c9d8e7f", ...chunking, ...extra], env)
                expect(r.code, r.stderr).toBe(0)
                return JSON.parse(r.stdout) as Shown
              })
            )
          const chain = [yield* backupOnce([])]
          const rounds = [
            [{ at: 2 * MiB + 100, length: 5000, pattern: 0x31 }, { at: 50 * MiB, length: MiB, pattern: 0x32 }],
            [{ at: 0, length: 64 * 1024 }, { at: 33 * MiB, length: 3 * MiB, pattern: 0x33 }],
            [{ at: 63 * MiB, length: MiB, pattern: 0x34 }]
          ]
          for (const [round, writes] of rounds.entries()) {
            qemuWrite(image, writes)
            chain.push(yield* backupOnce(["--incremental", "--dirty-bitmap", "since-last"]))
            // The next incremental's bitmap starts here.
            tool("qemu-img", ["bitmap", "--clear", image, "since-last"])
            const out = join(dir, `restored-${round}.img`)
            const restored = yield* cli(["restore", chain.at(-1)!.id, out], env)
            expect(restored.code, restored.stderr).toBe(0)
            expect(readFileSync(out).equals(rawOf(image, join(dir, "raw.img"))), `incremental ${round + 1}`).toBe(true)
          }
          expect(chain.map((r) => r.parent_id)).toEqual([null, chain[0]!.id, chain[1]!.id, chain[2]!.id])
          // Cinder's own restore of the last incremental, from our posix store.
          const asRow = (r: Shown, status: string): OracleRecord => ({
            id: r.id,
            volume_id: r.volume_id,
            parent_id: r.parent_id,
            container: r.container,
            service_metadata: r.service_metadata,
            display_name: r.display_name,
            display_description: r.display_description,
            created_at: r.created_at,
            size: r.size,
            status,
            availability_zone: r.availability_zone,
            object_count: r.object_count,
            service: r.service
          })
          const target = join(dir, "cinder.img")
          writeFileSync(target, new Uint8Array(SIZE))
          yield* Effect.promise(() =>
            runOracle({
              op: "restore",
              backup_path: join(dir, "repo", "store"),
              volume_path: target,
              volume_size_gib: 1,
              backup: asRow(chain[3]!, "restoring"),
              backups: chain.slice(0, 3).map((r) => asRow(r, "available"))
            })
          )
          expect(readFileSync(target).subarray(0, SIZE).equals(rawOf(image, join(dir, "raw.img")))).toBe(true)
        })
      ).pipe(Effect.scoped),
    90_000
  )

  it.live(
    "a server killed mid-backup: exit 11 naming the URI, no object left, the record error",
    () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
          // Slow reads of non-zero data, so that the backup is still reading when the server dies.
          const server = yield* nbdkit(join(dir, "nbd.sock"), ["--filter=delay", "pattern", "size=256M", "rdelay=20ms"])
          const running = startCli(["--json", "backup", server.uri, ...chunking, "--volume-id", "5d1c3a2e-0b5f-4f6e-9d3c-2a1b0c9d8e7f"], env)
          yield* Effect.sleep("1500 millis")
          server.kill()
          const result = yield* Effect.promise(() => running.result)
          expect(result.code, result.stderr).toBe(exitCodes.VolumeError)
          expect(result.stderr).toContain(server.uri)
          expect(filesUnder(join(dir, "repo", "store"))).toEqual([])
          const listed = JSON.parse((yield* cli(["--json", "list", "--all"], env)).stdout) as ReadonlyArray<{ status: string }>
          expect(listed.map((r) => r.status)).toEqual(["error"])
        })
      ).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "refused: --dirty-bitmap without an incremental or without NBD, an unknown bitmap, a bitmap on an export of another size, nbds://; broken: refused connections and unknown exports",
    () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
          const image = join(dir, "vm.qcow2")
          tool("qemu-img", ["create", "-q", "-f", "qcow2", image, String(4 * MiB)])
          tool("qemu-img", ["bitmap", "--add", image, "b0"])
          const volume = ["--volume-id", "5d1c3a2e-0b5f-4f6e-9d3c-2a1b0c9d8e7f"]
          const server = yield* qemuNbd(image, join(dir, "nbd.sock"), { bitmap: "b0", exportName: "vm" })
          const expectExit = (args: ReadonlyArray<string>, code: number, text: string) =>
            Effect.gen(function* () {
              const r = yield* cli(args, env)
              expect(r.code, r.stderr).toBe(code)
              expect(r.stderr).toContain(text)
            })
          yield* expectExit(["backup", server.uri, "--dirty-bitmap", "b0", ...volume], exitCodes.InvalidRequest, "--dirty-bitmap is for an incremental backup")
          writeFileSync(join(dir, "disk.img"), new Uint8Array(MiB))
          yield* expectExit(["backup", join(dir, "disk.img"), "--incremental", "--dirty-bitmap", "b0"], exitCodes.InvalidRequest, "--dirty-bitmap needs an NBD source")
          yield* expectExit(["backup", "nbds://127.0.0.1/vm", ...volume], exitCodes.InvalidRequest, "nbds://127.0.0.1/vm")
          yield* expectExit(["backup", `nbd+unix:///vm?socket=${join(dir, "nobody.sock")}`, ...volume], exitCodes.VolumeError, "nobody.sock")
          yield* expectExit(["backup", server.uri.replace("///vm", "///other"), ...volume], exitCodes.VolumeError, '"other"')
          const full = yield* cli(["--json", "backup", server.uri, ...volume], env)
          expect(full.code, full.stderr).toBe(0)
          yield* expectExit(["backup", server.uri, "--incremental", "--dirty-bitmap", "nope", ...volume], exitCodes.VolumeError, 'no dirty bitmap named "nope"')
          // The same volume id, served at another size: the bitmap cannot be since that backup.
          const smaller = join(dir, "smaller.qcow2")
          tool("qemu-img", ["create", "-q", "-f", "qcow2", smaller, String(2 * MiB)])
          tool("qemu-img", ["bitmap", "--add", smaller, "b0"])
          const other = yield* qemuNbd(smaller, join(dir, "other.sock"), { bitmap: "b0" })
          yield* expectExit(["backup", other.uri, "--incremental", "--dirty-bitmap", "b0", ...volume], exitCodes.InvalidRequest, "cannot be since that backup")
          const listed = JSON.parse((yield* cli(["--json", "list", "--all"], env)).stdout) as ReadonlyArray<unknown>
          expect(listed).toHaveLength(1)
        })
      ).pipe(Effect.scoped),
    60_000
  )
})
