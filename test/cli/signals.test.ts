/**
 * The CLI as scripts see it: a signal is never success (130 for SIGINT, 143
 * for SIGTERM, with a line saying what was stopped and what is left), and a
 * block device is a volume like an image file.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { cli, startCli } from "../support/cli.js"
import { withTempDir } from "../support/layers.js"

/** Varied text, slow to compress with bzip2: a backup of it runs long enough to be stopped. */
const textVolume = (bytes: number, seed = 11) => {
  const out = Buffer.alloc(bytes)
  let x = seed
  for (let offset = 0; offset < bytes; ) {
    x = (x * 1103515245 + 12345) >>> 0
    offset += out.write(`${(x >>> 8).toString(36)} `, offset)
  }
  return out
}

const dataObjects = (storeRoot: string) =>
  readdirSync(storeRoot, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && /-\d{5}$/.test(e.name))

/** Starts the CLI and sends `signal` once it has shown progress; the finished result. */
const stopped = (args: ReadonlyArray<string>, env: Record<string, string>, signal: NodeJS.Signals) =>
  Effect.promise(async () => {
    const running = startCli(args, env)
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer | string) => {
        if (String(chunk).includes('"type":"progress"')) {
          running.child.stderr!.off("data", onData)
          resolve()
        }
      }
      running.child.stderr!.on("data", onData)
      running.child.on("close", () => resolve())
    })
    running.child.kill(signal)
    return running.result
  })

const BACKUP_ID = "5e1f0000-0000-4000-8000-00000000000a"

describe("CLI and signals", () => {
  it.live("SIGINT while zlib workers compress never crashes the process: 12 stops at varied moments all exit 130", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        // A terminated worker's addon call once handed V8 an uninitialised value: SIGSEGV in 1 stop of 3.
        const volume = Buffer.alloc(256 * 1024 * 1024)
        for (let at = 0; at < volume.length; at += 1 << 20) volume.set(randomBytes(1 << 19), at)
        writeFileSync(join(dir, "disk.img"), volume)
        for (let i = 0; i < 12; i++) {
          const env = { CHUNKED_BACKUP_REPO: join(dir, `repo-${i}`) }
          const result = yield* Effect.promise(async () => {
            const running = startCli(["backup", join(dir, "disk.img"), "--chunk-size", "4194304", "--concurrency", "1"], env)
            // Once objects are being made, at a different moment each time.
            await new Promise<void>((resolve) => {
              const onData = (chunk: Buffer | string) => {
                if (String(chunk).includes('"type":"progress"')) {
                  running.child.stderr!.off("data", onData)
                  setTimeout(resolve, 37 * i)
                }
              }
              running.child.stderr!.on("data", onData)
              running.child.on("close", () => resolve())
            })
            running.child.kill("SIGINT")
            return running.result
          })
          expect([130, 0], `stop ${i}: ${result.code} ${result.signal} ${result.stderr.slice(-300)}`).toContain(result.code)
        }
      })
    ), { timeout: 180_000 }
  )

  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    it.live(`${signal} during a backup exits ${code}, says what it cleaned up, and leaves no object`, () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
          writeFileSync(join(dir, "disk.img"), textVolume(48 * 1024 * 1024))
          const args = ["backup", join(dir, "disk.img"), "--backup-id", BACKUP_ID, "--compression", "bz2", "--chunk-size", "1048576"]
          const result = yield* stopped(args, env, signal)
          expect(result.code, result.stderr).toBe(code)
          expect(result.stderr).toContain(`interrupted by ${signal}`)
          expect(result.stderr).toContain(`backup ${BACKUP_ID} interrupted: the objects it wrote were deleted; its record is error`)
          const shown = yield* cli(["--json", "show", BACKUP_ID], env)
          expect(JSON.parse(shown.stdout)).toMatchObject({ status: "error", fail_reason: "interrupted" })
          expect(dataObjects(join(dir, "repo", "store"))).toEqual([])
        })
      )
    )
  }

  it.live("SIGINT in the middle of a 50 MiB bzip2 chunk takes effect within about a second", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        writeFileSync(join(dir, "disk.img"), textVolume(60 * 1024 * 1024))
        // The default chunk (50 MiB): bzip2 takes seconds over one, in a codec worker.
        const running = startCli(["backup", join(dir, "disk.img"), "--backup-id", BACKUP_ID, "--compression", "bz2"], env)
        yield* Effect.sleep("2500 millis")
        const sent = Date.now()
        running.child.kill("SIGINT")
        const result = yield* Effect.promise(() => running.result)
        const took = Date.now() - sent
        expect(result.code, result.stderr).toBe(130)
        expect(took).toBeLessThan(1500)
        expect(result.stderr).toContain("the objects it wrote were deleted")
        expect(dataObjects(join(dir, "repo", "store"))).toEqual([])
      })
    )
  )

  it.live("SIGTERM during a restore exits 143 and hands the backup back available", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        writeFileSync(join(dir, "disk.img"), textVolume(64 * 1024 * 1024))
        const made = yield* cli(["backup", join(dir, "disk.img"), "--backup-id", BACKUP_ID, "--compression", "bz2", "--chunk-size", "1048576"], env)
        expect(made.code, made.stderr).toBe(0)
        const result = yield* stopped(["restore", BACKUP_ID, join(dir, "restored.img"), "--concurrency", "1"], env, "SIGTERM")
        expect(result.code, result.stderr).toBe(143)
        expect(result.stderr).toContain(`restore of ${BACKUP_ID} interrupted`)
        const shown = yield* cli(["--json", "show", BACKUP_ID], env)
        expect(JSON.parse(shown.stdout)).toMatchObject({ status: "available" })
      })
    )
  )
})

/** Whether this machine lets us attach loop devices (root, a loop driver). */
const loopDevices = (() => {
  if (process.platform !== "linux") return false
  const probe = spawnSync("losetup", ["-f"], { encoding: "utf8" })
  return probe.status === 0 && probe.stdout.trim().startsWith("/dev/loop")
})()
if (!loopDevices) console.warn("signals.test.ts: no loop devices here (losetup -f failed): the block-device tests are skipped")

/** A loop device over a new file of `bytes` for the duration of `use`. */
const withLoopDevice = <A, E>(dir: string, name: string, bytes: Buffer, use: (device: string) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      writeFileSync(join(dir, name), bytes)
      return execFileSync("losetup", ["-f", "--show", join(dir, name)], { encoding: "utf8" }).trim()
    }),
    use,
    (device) => Effect.sync(() => execFileSync("losetup", ["-d", device]))
  )

describe("CLI and block devices", () => {
  it.live.skipIf(!loopDevices)("backs up a loop device, restores it into a file and onto another device; a device too small is refused with exit 11", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        const data = textVolume(8 * 1024 * 1024 + 4096)
        yield* withLoopDevice(dir, "source.img", data, (source) =>
          Effect.gen(function* () {
            const made = yield* cli(["backup", source, "--chunk-size", "1048576"], env)
            expect(made.code, made.stderr).toBe(0)
            const id = made.stdout.trim()
            const shown = JSON.parse((yield* cli(["--json", "show", id], env)).stdout) as { volume_size_bytes: number }
            expect(shown.volume_size_bytes).toBe(data.length)
            const restored = yield* cli(["restore", id, join(dir, "restored.img")], env)
            expect(restored.code, restored.stderr).toBe(0)
            expect(readFileSync(join(dir, "restored.img")).equals(data)).toBe(true)
            yield* withLoopDevice(dir, "target.img", Buffer.alloc(data.length + 8192, 0xee), (target) =>
              Effect.gen(function* () {
                const onDevice = yield* cli(["restore", id, target], env)
                expect(onDevice.code, onDevice.stderr).toBe(0)
                const written = readFileSync(target)
                expect(written.subarray(0, data.length).equals(data)).toBe(true)
                // Past the volume's end the device keeps what it had.
                expect(written.subarray(data.length).every((b) => b === 0xee)).toBe(true)
              })
            )
            yield* withLoopDevice(dir, "small.img", Buffer.alloc(4 * 1024 * 1024), (small) =>
              Effect.gen(function* () {
                const refused = yield* cli(["restore", id, small], env)
                expect(refused.code, refused.stderr).toBe(exitCodes.VolumeError)
                expect(refused.stderr).toContain("less than the backup's")
              })
            )
          })
        )
      })
    )
  )

  it.live("a directory as the restore target is a VolumeError (exit 11) in plain words", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const env = { CHUNKED_BACKUP_REPO: join(dir, "repo") }
        writeFileSync(join(dir, "disk.img"), textVolume(100_000))
        const id = (yield* cli(["backup", join(dir, "disk.img")], env)).stdout.trim()
        const result = yield* cli(["restore", id, dir], env)
        expect(result.code, result.stderr).toBe(exitCodes.VolumeError)
        expect(result.stderr).toContain(`volume ${dir}: is a directory, not a file or block device`)
      })
    )
  )

  it.live("a missing volume is a VolumeError (exit 11) naming it, not a usage error or a crash", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const result = yield* cli(["backup", join(dir, "nope.img")], { CHUNKED_BACKUP_REPO: join(dir, "repo") })
        expect(result.code, result.stderr).toBe(exitCodes.VolumeError)
        expect(result.stderr).toContain(`volume ${join(dir, "nope.img")}: does not exist`)
      })
    )
  )
})
