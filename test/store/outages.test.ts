/**
 * Outages of the bad link (test/support/badLink.ts): the link drops every
 * packet for a while in the middle of a backup or restore. Apart from
 * bad-network.test.ts, whose throughput table wants the machine to itself:
 * these mostly wait, so they run beside other files. (Never beside
 * bad-network.test.ts: a bad link's addresses are fixed, and that file runs
 * in the timed project, after this one's.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../src/cli/errors.js"
import { client, exited, MiB, onBadLink, outageDuring } from "../support/badLink.js"
import { waitUntil } from "../support/layers.js"
import { loopback, SKIP_REASON, swiftObjectsIn, uniqueContainer } from "../support/swift.js"

describe.skipIf(loopback === undefined)(loopback ? "outages of a bad network (40 ms RTT, 1 % loss) between the CLI and Swift" : `bad network (skipped: ${SKIP_REASON})`, () => {
  it.live("a backup and a restore each survive a 5 s outage in their middle, bit-exact", () =>
    onBadLink(1, (link, dir) =>
      Effect.gen(function* () {
        const container = uniqueContainer("badnet")
        const host = client(link, dir, container)
        const volume = join(dir, "vol.img")
        const data = randomBytes(12 * MiB)
        writeFileSync(volume, data)
        const backup = host.start(["backup", volume, "--volume-id", "badnet-a", "--chunk-size", "524288", "--concurrency", "2"])
        yield* waitUntil("objects of the running backup", () => Effect.map(swiftObjectsIn(container), (names) => names.length >= 2), 60_000)
        const started = performance.now()
        const backedUp = yield* outageDuring(link, backup, 5000)
        expect(backedUp.code, backedUp.stderr).toBe(0)
        console.log(`bad network: the backup finished ${((performance.now() - started) / 1000).toFixed(1)} s after its 5 s outage began; ${backedUp.stderr.trim()}`)
        const id = backedUp.stdout.trim()

        const target = join(dir, "restored.img")
        const restore = host.start(["restore", id, target, "--new", "--concurrency", "2"])
        yield* Effect.sleep("1500 millis")
        const restoreStarted = performance.now()
        const restored = yield* outageDuring(link, restore, 5000)
        expect(restored.code, restored.stderr).toBe(0)
        console.log(`bad network: the restore finished ${((performance.now() - restoreStarted) / 1000).toFixed(1)} s after its 5 s outage began`)
        expect(readFileSync(target).equals(data)).toBe(true)
      })), 180_000)

  // This case found requests that outlived their timeouts: the delete after a failed put, and deletes in
  // finalizers, ran uninterruptibly, where Effect's timeout waits for what it interrupts. The backup stalled
  // for the whole outage and completed exit 0 once the link was back (src/store/http.ts, inOwnFiber).
  it.live("an outage longer than the retry budget ends the backup in StoreUnavailable; once the link is back, cleanup leaves no objects", () =>
    onBadLink(2, (link, dir) =>
      Effect.gen(function* () {
        const container = uniqueContainer("badnet-out")
        // A stalled request gives up after 2 s (timeout=2), and so does the delete that follows each failed put;
        // the retries stop after 3 s (CHUNKED_BACKUP_RETRY_FOR, where the CLI knows it) or else after 5 retries:
        // 6 x (2 + 2) s + about 6 s of backoff, some 30 s. The lease runs out 2 s after the process is gone.
        const env = { CHUNKED_BACKUP_RETRY_FOR: "3s", CHUNKED_BACKUP_LEASE_SECONDS: "2" }
        const host = client(link, dir, container, env, "&timeout=2")
        const volume = join(dir, "vol.img")
        writeFileSync(volume, randomBytes(16 * MiB))
        const id = "badbad00-0000-4000-8000-000000000001"
        const backup = host.start(["backup", volume, "--volume-id", "badnet-b", "--backup-id", id, "--chunk-size", "524288", "--concurrency", "2"])
        yield* waitUntil("objects of the running backup", () => Effect.map(swiftObjectsIn(container), (names) => names.length >= 2), 60_000)
        expect(exited(backup), "the backup ended before the outage").toBe(false)
        // 50 s: longer than either budget.
        yield* link.down
        const began = performance.now()
        let gaveUpAfter = Number.NaN
        void backup.result.then(() => (gaveUpAfter = (performance.now() - began) / 1000))
        yield* Effect.sleep("50 seconds")
        yield* link.up
        // Its deletes of what it wrote may still be waiting on the link when it comes back.
        const failed = yield* Effect.promise(() => backup.result)
        console.log(`bad network: with the link down for 50 s, the backup gave up ${(gaveUpAfter).toFixed(1)} s after it went down: ${failed.stderr.trim().split("\n").at(-1)}`)
        expect(failed.code, failed.stderr).toBe(exitCodes.StoreUnavailable)
        expect(gaveUpAfter, "the backup waited for the link to come back").toBeLessThan(45)
        const statusOf = () =>
          Effect.map(host.run(["--json", "list", "--all"]), (r) =>
            (JSON.parse(r.stdout) as Array<{ id: string; status: string }>).find((b) => b.id === id)?.status)
        expect(yield* statusOf()).not.toBe("available")
        yield* Effect.sleep("2500 millis")
        const cleaned = yield* host.run(["cleanup"])
        expect(cleaned.code, cleaned.stderr).toBe(0)
        expect(yield* statusOf()).not.toBe("available")
        expect(yield* swiftObjectsIn(container)).toEqual([])
      })), 180_000)
})
