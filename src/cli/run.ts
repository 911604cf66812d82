/**
 * Runs the CLI on an argv (the first two entries are skipped, as in
 * process.argv). Errors end here: one line on stderr, an exit code
 * per cause, a stack trace only with --verbose. SIGINT/SIGTERM interrupt the
 * command, so a backup cleans up what it wrote.
 */
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Cause, Effect } from "effect"
import { command } from "./commands.js"
import { outcomeOf } from "./errors.js"

export const run = (argv: ReadonlyArray<string>) =>
  Command.run(command, { name: "chunked-backup", version: "0.1.0" })(argv).pipe(
    Effect.catchAllCause((cause) =>
      Effect.sync(() => {
        const { code, message } = outcomeOf(cause)
        if (message !== "") process.stderr.write(`chunked-backup: ${message}\n`)
        if (argv.includes("--verbose")) process.stderr.write(Cause.pretty(cause) + "\n")
        process.exitCode = code
      })
    ),
    Effect.provide(NodeContext.layer)
  )

