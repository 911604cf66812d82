/**
 * Fuzzed documents and objects (issue 16, item 5): a few hundred seeded
 * mutations of real backups' `_metadata`, `_sha256file`, data objects and
 * exported records; scripts/fuzz.sh runs the same harness for 10,000+.
 * FUZZ_CASES and FUZZ_SEED override the defaults.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { runFuzz } from "../support/fuzzHarness.js"
import { withTempDir } from "../support/layers.js"

const cases = Number(process.env["FUZZ_CASES"] ?? 300)
const seed = Number(process.env["FUZZ_SEED"] ?? 16)

describe("fuzzed documents and objects", () => {
  it.effect(
    `${cases} mutations (seed ${seed}): every restore, verify, scan and import ends typed or bit-exact, in bounded time and memory`,
    () =>
      withTempDir((dir) =>
        Effect.gen(function* () {
          const started = Date.now()
          const summary = yield* runFuzz(dir, cases, seed)
          const { failures, ...figures } = summary
          console.log(`fuzz: ${JSON.stringify({ ...figures, retainedGrowthMiB: Math.round(summary.retainedGrowth / 2 ** 20), peakRssGrowthMiB: Math.round(summary.peakRssGrowth / 2 ** 20), seconds: (Date.now() - started) / 1000, failures: failures.length })}`)
          expect(failures.slice(0, 20)).toEqual([])
          expect(summary.typed + summary.bitExact + summary.records.imported + summary.records.refused).toBe(cases)
        })
      ),
    Math.max(120_000, cases * 2_000)
  )
})
