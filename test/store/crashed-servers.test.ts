/**
 * Crashed servers (issue 16, item 4): a PRIVATE loopback Swift (its own
 * directory and ports, so the shared one is never touched) whose object
 * server or Keystone is SIGKILLed in the middle of a CLI backup or restore
 * and started again seconds later (scripts/swift-loopback.sh crash/revive).
 * An object server outage shorter than the retry budget is carried
 * through (exit 0, bit-exact restore); one longer than the budget ends
 * typed (StoreUnavailable) with nothing `available`, and cleanup removes its
 * objects. A Keystone outage while the token must be checked again ends
 * either way, never exit 0 with wrong bytes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { execFile } from "node:child_process"
import { randomBytes, randomUUID } from "node:crypto"
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll } from "vitest"
import { exitCodes } from "../../src/cli/errors.js"
import { cli, startCli, type CliResult, type RunningCli } from "../support/cli.js"
import { withTempDir } from "../support/layers.js"
import { flushMemcached, uniqueContainer } from "../support/swift.js"

const SCRIPT = fileURLToPath(new URL("../../scripts/swift-loopback.sh", import.meta.url))
// Ports of the shared instance + 10000 (none of them in use by other tests).
const PRIVATE: Record<string, string> = {
  SWIFT_LOOPBACK_DIR: `/tmp/cb-swift-crash-${process.pid}`,
  SWIFT_LOOPBACK_PORT: "18080",
  SWIFT_LOOPBACK_OBJECT_PORT: "16200",
  SWIFT_LOOPBACK_CONTAINER_PORT: "16201",
  SWIFT_LOOPBACK_ACCOUNT_PORT: "16202",
  SWIFT_LOOPBACK_MEMCACHED_PORT: "21311",
  SWIFT_LOOPBACK_KEYSTONE_PORT: "15000",
  SWIFT_LOOPBACK_KEYSTONE_PROXY_PORT: "18081",
  // With one replica a proxy that shuns a crashed server for Swift's 60 s has nowhere else to go.
  SWIFT_LOOPBACK_ERROR_LIMIT_SECONDS: "1",
  SWIFT_LOOPBACK_WORKERS: "1"
}

const installed = existsSync("/usr/bin/swift-proxy-server") && existsSync("/usr/bin/keystone-wsgi-public")
const SKIP_REASON = "Swift and Keystone are not installed (scripts/swift-loopback.sh start installs them)"
if (!installed && process.env.CI === "true") throw new Error(`CI=true but ${SKIP_REASON}`)

/** One run of scripts/swift-loopback.sh on the private instance. */
const loopbackScript = (...args: ReadonlyArray<string>) =>
  new Promise<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resolve) =>
    execFile("bash", [SCRIPT, ...args], { env: { ...process.env, ...PRIVATE }, timeout: 180_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
    )
  )
const server = (command: "crash" | "revive", name: string) =>
  Effect.promise(async () => {
    const run = await loopbackScript(command, name)
    if (run.code !== 0) throw new Error(`swift-loopback.sh ${command} ${name} exited ${run.code}: ${run.stderr}`)
  })

/** The `export VAR=value` lines of `swift-loopback.sh env`, as a record. */
let endpoints: Record<string, string> = {}

beforeAll(async () => {
  if (!installed) return
  const started = await loopbackScript("start")
  if (started.code !== 0) throw new Error(`the private loopback Swift did not start: ${started.stderr}`)
  const env = await loopbackScript("env")
  endpoints = Object.fromEntries([...env.stdout.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]))
}, 180_000)

afterAll(async () => {
  if (!installed) return
  await loopbackScript("stop")
  rmSync(PRIVATE.SWIFT_LOOPBACK_DIR!, { recursive: true, force: true })
}, 60_000)

/** CLI environment and store URL for tempauth (v1) or Keystone on the private instance. */
const tempauth = (repo: string, container: string) => ({
  url: `${endpoints.SWIFT_LOOPBACK_AUTH_URL!.replace(/^http:/, "swift+http:")}?container=${container}`,
  env: { CHUNKED_BACKUP_REPO: repo, SWIFT_USER: endpoints.SWIFT_LOOPBACK_USER!, SWIFT_KEY: endpoints.SWIFT_LOOPBACK_KEY! }
})
const keystone = (repo: string, container: string) => ({
  url: `${endpoints.SWIFT_LOOPBACK_KEYSTONE_URL!.replace(/^http:/, "swift+http:")}?container=${container}`,
  env: {
    CHUNKED_BACKUP_REPO: repo,
    OS_USERNAME: endpoints.SWIFT_LOOPBACK_KEYSTONE_USER!,
    OS_PASSWORD: endpoints.SWIFT_LOOPBACK_KEYSTONE_PASSWORD!,
    OS_PROJECT_NAME: endpoints.SWIFT_LOOPBACK_KEYSTONE_PROJECT!
  }
})

/** Resolves once the running command's progress (JSON lines on stderr) has passed `fraction`, or it has ended. */
const progressPast = (running: RunningCli, fraction: number) =>
  Effect.promise(
    () =>
      new Promise<void>((resolve) => {
        let seen = ""
        running.child.stderr!.on("data", (chunk: string) => {
          seen += chunk
          for (const m of seen.matchAll(/"bytesDone":(\d+),"bytesTotal":(\d+)/g)) {
            if (Number(m[1]) >= fraction * Number(m[2])) resolve()
          }
          seen = seen.slice(-400)
        })
        void running.result.then(() => resolve())
      })
  )

/** The names of the objects in `container` (tempauth, plain fetch: independent of the store under test). */
const objectNames = (container: string) =>
  Effect.promise(async () => {
    const auth = await fetch(endpoints.SWIFT_LOOPBACK_AUTH_URL!, {
      headers: { "x-auth-user": endpoints.SWIFT_LOOPBACK_USER!, "x-auth-key": endpoints.SWIFT_LOOPBACK_KEY! }
    })
    const listing = await fetch(`${auth.headers.get("x-storage-url")}/${container}`, {
      headers: { "x-auth-token": auth.headers.get("x-auth-token")! }
    })
    if (listing.status === 404) return []
    return (await listing.text()).split("\n").filter((name) => name !== "")
  })

type Store = { readonly url: string; readonly env: Record<string, string> }

const statusOf = (store: Store, id: string) =>
  Effect.map(cli(["--store", store.url, "--json", "show", id], store.env), (shown) =>
    shown.code === 0 ? String((JSON.parse(shown.stdout) as { status?: unknown }).status) : `none (show exited ${shown.code})`
  )

/** A backup that did not exit 0 ended typed, and its record is not `available`. */
const expectTypedFailure = (store: Store, id: string, result: CliResult) =>
  Effect.gen(function* () {
    expect([exitCodes.ok, exitCodes.internal], result.stderr).not.toContain(result.code)
    expect(yield* statusOf(store, id)).not.toBe("available")
  })

/** Restores `id` and returns the exit and the bytes written. */
const restoreOf = (store: Store, id: string, target: string) =>
  Effect.map(cli(["--store", store.url, "restore", id, target, "--new"], store.env), (result) => ({
    result,
    bytes: existsSync(target) ? readFileSync(target) : Buffer.alloc(0)
  }))

const BACKUP_ARGS = ["--chunk-size", "65536", "--compression", "none", "--concurrency", "2"]

describe("CHUNKED_BACKUP_RETRY_FOR", () => {
  it.live("a value that is not a duration is refused with exit 3, naming the variable and the value", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const result = yield* cli(["--store", "swift+http://127.0.0.1:1/auth/v1.0", "list"], {
          CHUNKED_BACKUP_REPO: join(dir, "repo"),
          CHUNKED_BACKUP_RETRY_FOR: "soon"
        })
        expect(result.code, result.stderr).toBe(exitCodes.InvalidRequest)
        expect(result.stderr).toContain("CHUNKED_BACKUP_RETRY_FOR")
        expect(result.stderr).toContain('"soon"')
      })
    )
  )
})

/** Writes a random volume of `size` bytes under `dir` and returns its path and bytes. */
const randomVolume = (dir: string, size: number) => {
  const path = join(dir, "disk.img")
  const data = randomBytes(size)
  writeFileSync(path, data)
  return { path, data }
}

/** A CLI backup of `volume` to `store` during which `outage` runs once a fifth of it is stored; its id and how it ended. */
const backupThrough = (store: Store, volume: string, outage: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const id = randomUUID()
    const running = startCli(["--store", store.url, "backup", volume, "--backup-id", id, ...BACKUP_ARGS], store.env)
    yield* progressPast(running, 0.2)
    yield* outage
    return { id, result: yield* Effect.promise(() => running.result) }
  })

/** `name` SIGKILLed, and started again `seconds` later. */
const crashFor = (name: string, seconds: number, meanwhile: Effect.Effect<void> = Effect.void) =>
  Effect.gen(function* () {
    yield* server("crash", name)
    yield* meanwhile
    yield* Effect.sleep(Duration.seconds(seconds))
    yield* server("revive", name)
  })

/** `id` restores to exactly `data`. */
const expectRestoresTo = (store: Store, id: string, dir: string, data: Uint8Array) =>
  Effect.gen(function* () {
    const restored = yield* restoreOf(store, id, join(dir, "restored.img"))
    expect(restored.result.code, restored.result.stderr).toBe(0)
    expect(restored.bytes.equals(data)).toBe(true)
  })

describe.skipIf(!installed)(`crashed servers (a private loopback Swift in ${PRIVATE.SWIFT_LOOPBACK_DIR})`, () => {
  it.live("the object server SIGKILLed mid-backup and back ~3 s later: the backup completes through retries, the restore is bit-exact", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const store = tempauth(join(dir, "repo"), uniqueContainer("crash-b"))
        const volume = randomVolume(dir, 32 * 1024 * 1024)
        const { id, result } = yield* backupThrough(store, volume.path, crashFor("object", 3))
        expect(result.code, result.stderr).toBe(0)
        expect(yield* statusOf(store, id)).toBe("available")
        yield* expectRestoresTo(store, id, dir, volume.data)
      })
    )
  )

  it.live("the object server SIGKILLed mid-restore and back ~8 s later (longer than the old retries lasted): the restore completes bit-exact", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const store = tempauth(join(dir, "repo"), uniqueContainer("crash-r"))
        const volume = randomVolume(dir, 32 * 1024 * 1024)
        const { id, result: backedUp } = yield* backupThrough(store, volume.path, Effect.void)
        expect(backedUp.code, backedUp.stderr).toBe(0)
        const target = join(dir, "restored.img")
        const running = startCli(["--store", store.url, "restore", id, target, "--new", "--concurrency", "2"], store.env)
        yield* progressPast(running, 0.2)
        // Longer than the old retries (5 from 200 ms, ~6 s) lasted; within the default budget of 30 s.
        yield* crashFor("object", 8)
        const result = yield* Effect.promise(() => running.result)
        expect(result.code, result.stderr).toBe(0)
        expect(readFileSync(target).equals(volume.data)).toBe(true)
      })
    )
  )

  it.live("with CHUNKED_BACKUP_RETRY_FOR=2s an outage longer than that ends the backup StoreUnavailable, not available; cleanup then leaves none of its objects", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const container = uniqueContainer("crash-s")
        const store = tempauth(join(dir, "repo"), container)
        const short = { ...store, env: { ...store.env, CHUNKED_BACKUP_RETRY_FOR: "2s" } }
        const volume = randomVolume(dir, 32 * 1024 * 1024)
        const { id, result } = yield* backupThrough(short, volume.path, server("crash", "object")).pipe(
          Effect.ensuring(server("revive", "object"))
        )
        expect(result.code, result.stderr).toBe(exitCodes.StoreUnavailable)
        expect(result.stderr).toContain(id)
        expect(yield* statusOf(store, id)).not.toBe("available")
        const cleaned = yield* cli(["--store", store.url, "cleanup"], store.env)
        expect(cleaned.code, cleaned.stderr).toBe(0)
        expect((yield* objectNames(container)).filter((name) => name.includes(id))).toEqual([])
        expect(yield* statusOf(store, id)).toBe("error")
      })
    )
  )

  it.live("Keystone SIGKILLed while the token must be checked again, back ~3 s later: the backup completes or fails typed; restored bit-exact", () =>
    withTempDir((dir) =>
      Effect.gen(function* () {
        const store = keystone(join(dir, "repo"), uniqueContainer("crash-k"))
        const volume = randomVolume(dir, 8 * 1024 * 1024)
        // The proxy forgets the tokens it validated: the next call's token goes to Keystone, which is down, and is renewed there.
        const forget = Effect.promise(() => flushMemcached(endpoints.SWIFT_LOOPBACK_MEMCACHED!))
        const { id, result } = yield* backupThrough(store, volume.path, crashFor("keystone", 3, forget))
        if (result.code !== 0) return yield* expectTypedFailure(store, id, result)
        yield* expectRestoresTo(store, id, dir, volume.data)
      })
    )
  )
})
