/**
 * CI's share of the soak (scripts/soak.sh): 3 minutes of random backups,
 * incrementals, restores, deletes, cleanups, cancels and kill -9 of the CLI,
 * from up to 3 processes at once, split over a posix store + SQLite catalog
 * and the loopback Swift, with a fixed seed; every invariant holds after
 * every step, and every kind of operation and fault happened.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { describeReport } from "../../src/testing/soak/report.js"
import { runSoak } from "../../src/testing/soak/soak.js"
import { OPERATION_KINDS } from "../../src/testing/soak/state.js"
import { BIN } from "../support/cli.js"
import { loopback, SKIP_REASON } from "../support/swift.js"

const SECONDS = 180
const SEED = 16

describe("soak", () => {
  it.live(`${SECONDS} s of random operations and faults, ${loopback === undefined ? `posix only (${SKIP_REASON})` : "posix, then Swift"}: no invariant is violated`, () =>
    Effect.gen(function* () {
      if (loopback === undefined && process.env.CI === "true") throw new Error(`CI=true needs the loopback Swift: ${SKIP_REASON}`)
      const report = yield* runSoak({
        seed: SEED,
        seconds: SECONDS,
        targets: loopback === undefined ? ["posix"] : ["posix", "swift"],
        ...(loopback === undefined ? {} : { swift: { authUrl: loopback.authUrl, user: loopback.user, key: loopback.key } }),
        cli: BIN
      })
      console.log(describeReport(report))
      expect(report.targets.flatMap((t) => t.violations)).toEqual([])
      for (const kind of OPERATION_KINDS) expect(report.targets.reduce((n, t) => n + t.operations[kind], 0), kind).toBeGreaterThan(0)
      for (const t of report.targets) {
        expect(t.faults.kills, `${t.target} kills`).toBeGreaterThan(0)
        expect(t.faults.cancels, `${t.target} cancels`).toBeGreaterThan(0)
        expect(t.checks.verifies, `${t.target} verifies`).toBeGreaterThan(0)
        expect(t.checks.settles, `${t.target} settles`).toBeGreaterThan(0)
      }
    }), 600_000)
})
