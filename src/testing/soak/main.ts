/**
 * `node dist/src/testing/soak/main.js [minutes] [--seed N] [--targets posix,swift] [--concurrency N]`
 * (scripts/soak.sh builds this line). Prints the seed first, progress on
 * stderr, then the summary: one line `soak: {json}` and the same as text.
 * Exit codes: 0 no violation; 20 violations found (each printed with the
 * seed and step); 2 bad arguments; 1 the soak itself failed (a bug).
 */
import { Effect } from "effect"
import { randomInt } from "node:crypto"
import { fileURLToPath } from "node:url"
import { describeReport } from "./report.js"
import { runSoak } from "./soak.js"
import { swiftAccountFromEnv } from "./targets.js"

export const VIOLATIONS_EXIT = 20

const usage = "usage: soak [minutes] [--seed N] [--targets posix,swift] [--concurrency N]"

const parse = (argv: ReadonlyArray<string>) => {
  let minutes = 3
  let seed = randomInt(2 ** 31)
  let targets: Array<"posix" | "swift"> | undefined
  let concurrency = 3
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const value = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${arg} needs a value`)
      return v
    }
    if (arg === "--seed") seed = Number(value())
    else if (arg === "--targets") targets = value().split(",").map((t) => t.trim()) as Array<"posix" | "swift">
    else if (arg === "--concurrency") concurrency = Number(value())
    else if (/^\d+(\.\d+)?$/.test(arg)) minutes = Number(arg)
    else throw new Error(`unknown argument ${arg}`)
  }
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error("--seed must be a whole number")
  if (!(concurrency >= 1)) throw new Error("--concurrency must be at least 1")
  if (targets?.some((t) => t !== "posix" && t !== "swift")) throw new Error("--targets takes posix, swift or both")
  return { minutes, seed, targets, concurrency }
}

const main = Effect.gen(function* () {
  const args = yield* Effect.try(() => parse(process.argv.slice(2))).pipe(
    Effect.catchAll((e) => Effect.sync(() => {
      process.stderr.write(`${e.error instanceof Error ? e.error.message : String(e.error)}\n${usage}\n`)
      process.exit(2)
    }))
  )
  const swift = swiftAccountFromEnv(process.env)
  const targets = args.targets ?? (swift === undefined ? ["posix"] : ["posix", "swift"])
  process.stderr.write(`soak: seed ${args.seed} (replay: --seed ${args.seed}), ${args.minutes} min over ${targets.join(" and ")}${swift === undefined && args.targets === undefined ? " (no Swift: SWIFT_LOOPBACK_AUTH_URL is not set)" : ""}\n`)
  const report = yield* runSoak({
    seed: args.seed,
    seconds: args.minutes * 60,
    targets,
    ...(swift === undefined ? {} : { swift }),
    cli: fileURLToPath(new URL("../../../cli.mjs", import.meta.url)),
    concurrency: args.concurrency,
    log: (line) => process.stderr.write(`${line}\n`)
  })
  process.stdout.write(`soak: ${JSON.stringify(report)}\n${describeReport(report)}\n`)
  process.exitCode = report.violations > 0 ? VIOLATIONS_EXIT : 0
})

Effect.runPromise(main).catch((e) => {
  process.stderr.write(`soak failed: ${e instanceof Error ? e.stack : String(e)}\n`)
  process.exit(1)
})
