/**
 * A bad network: the CLI runs in a network namespace of its own and reaches
 * the loopback Swift over two TUN devices with test/support/tunlink.py
 * between them: 20 ms +- 5 ms each way (a 40 ms +- 10 ms RTT) and 1 % loss,
 * so TCP really retransmits and backs off; a table of throughput. Its
 * outages are in outages.test.ts. Skipped, saying why, where namespaces or
 * TUN devices are not permitted.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { client, MiB, onBadLink } from "../support/badLink.js"
import { loopback, SKIP_REASON, uniqueContainer } from "../support/swift.js"

describe.skipIf(loopback === undefined)(loopback ? "a bad network (40 ms RTT, 1 % loss) between the CLI and Swift" : `bad network (skipped: ${SKIP_REASON})`, () => {
  it.live("throughput at 40 ms RTT for --concurrency 1, 4, 16 (a table; each backup restores bit-exact)", () =>
    onBadLink(3, (link, dir) =>
      Effect.gen(function* () {
        const host = client(link, dir, uniqueContainer("badnet-rate"))
        const size = 32 * MiB
        const volume = join(dir, "vol.img")
        const data = randomBytes(size)
        writeFileSync(volume, data)
        const rows: Array<string> = []
        for (const concurrency of [1, 4, 16]) {
          const flag = ["--concurrency", String(concurrency)]
          const t0 = performance.now()
          const backedUp = yield* host.run(["backup", volume, "--volume-id", `badnet-rate-${concurrency}`, "--chunk-size", "1048576", ...flag])
          const t1 = performance.now()
          expect(backedUp.code, backedUp.stderr).toBe(0)
          const target = join(dir, `restored-${concurrency}.img`)
          const restored = yield* host.run(["restore", backedUp.stdout.trim(), target, "--new", ...flag])
          const t2 = performance.now()
          expect(restored.code, restored.stderr).toBe(0)
          expect(readFileSync(target).equals(data), `concurrency ${concurrency}`).toBe(true)
          const rate = (millis: number) => (size / MiB / (millis / 1000)).toFixed(1).padStart(7)
          rows.push(`| ${String(concurrency).padStart(11)} | ${rate(t1 - t0)} | ${rate(t2 - t1)} |`)
        }
        console.log([
          "bad network: 32 MiB of random data in 1 MiB objects at 40 ms +- 10 ms RTT, 1 % loss (MiB/s, wall clock of the CLI process)",
          "| concurrency |  backup | restore |",
          "|-------------|---------|---------|",
          ...rows
        ].join("\n"))
      })), 300_000)
})
