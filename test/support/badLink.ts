/**
 * The bad link of the bad-network tests: the CLI in a network namespace of
 * its own, reaching the loopback Swift over two TUN devices with
 * test/support/tunlink.py between them (delay, jitter, loss, outages).
 */
import { expect } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { join } from "node:path"
import { cli, startCli, type RunningCli } from "./cli.js"
import { withTempDir } from "./layers.js"
import { badLinkNamespace, type BadLinkNamespace } from "./netns.js"
import { loopback } from "./swift.js"

export const MiB = 1024 * 1024

/** The namespace behind the 40 ms, 1 % loss link, or undefined after printing why the test does not run. */
const badLink = (seed: number) =>
  Effect.gen(function* () {
    const link = yield* badLinkNamespace([Number(new URL(loopback!.authUrl).port)], { delayMs: 20, jitterMs: 5, loss: 0.01, seed })
    if (link === undefined) console.log("bad network: skipped: `ip netns` or /dev/net/tun is not permitted here")
    return link
  })

/** Runs `use` with the bad link's namespace and a temporary directory; removes both after. */
export const onBadLink = <E>(seed: number, use: (link: BadLinkNamespace, dir: string) => Effect.Effect<void, E, Scope.Scope>) =>
  withTempDir((dir) =>
    Effect.scoped(Effect.gen(function* () {
      const link = yield* badLink(seed)
      if (link !== undefined) yield* use(link, dir)
    })))

/** The CLI inside the namespace, on a SQLite catalog in `dir` and a Swift container of its own. */
export const client = (link: BadLinkNamespace, dir: string, container: string, extraEnv: Record<string, string> = {}, storeParams = "") => {
  const store = `${loopback!.authUrl.replace(/^http:/, "swift+http:")}?container=${container}${storeParams}`
  const globals = ["--catalog", join(dir, "catalog.sqlite"), "--store", store]
  const env = { SWIFT_USER: loopback!.user, SWIFT_KEY: loopback!.key, ...extraEnv }
  return {
    run: (args: ReadonlyArray<string>) => cli([...globals, ...args], env, undefined, link.exec),
    start: (args: ReadonlyArray<string>) => startCli([...globals, ...args], env, undefined, link.exec)
  }
}

/** Whether the running CLI has exited. */
export const exited = (running: RunningCli) => running.child.exitCode !== null || running.child.signalCode !== null

/** Takes the link down for `millis` while `running` works; fails the test if it ended before the outage began. */
export const outageDuring = (link: BadLinkNamespace, running: RunningCli, millis: number) =>
  Effect.gen(function* () {
    expect(exited(running), "the command ended before the outage").toBe(false)
    yield* link.down
    yield* Effect.sleep(millis)
    yield* link.up
    const result = yield* Effect.promise(() => running.result)
    return result
  })
