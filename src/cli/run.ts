/**
 * Runs the CLI on an argv (the first two entries are skipped, as in
 * process.argv). Errors end here: one line on stderr, an exit code
 * per cause, a stack trace only with --verbose. SIGINT/SIGTERM interrupt the
 * command, so a backup cleans up what it wrote.
 */
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Cause, Effect } from "effect"
import { command } from "./commands.js"
import { outcomeOf } from "./errors.js"
import { withoutFiller } from "./help.js"
import { stripAnsi, wantsPlainOutput, withConsoleText } from "./plainConsole.js"

const globalFlags = new Set(["--json", "--verbose"])
const globalWithValue = new Set(["--repo", "--store", "--catalog"])

/**
 * @effect/cli reads a parent command's options only before the subcommand;
 * people type `chunked-backup list --json`. Move global options to the front.
 */
export const hoistGlobalOptions = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const globals: Array<string> = []
  const rest: Array<string> = []
  const args = argv.slice(2)
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const name = arg.split("=")[0]!
    if (arg === "--") {
      rest.push(...args.slice(i))
      break
    }
    if (globalFlags.has(arg) || (globalWithValue.has(name) && arg.includes("="))) globals.push(arg)
    else if (globalWithValue.has(arg) && i + 1 < args.length) globals.push(arg, args[++i]!)
    else rest.push(arg)
  }
  return [...argv.slice(0, 2), ...globals, ...rest]
}

export const run = (argv: ReadonlyArray<string>) =>
  Command.run(command, { name: "chunked-backup", version: "0.1.0" })(hoistGlobalOptions(argv)).pipe(
    (program) => {
      // Help may show for any command line (a bare one, --help, a usage error): filler lines never belong in our output.
      const plain = wantsPlainOutput()
      return withConsoleText(program, (text) => withoutFiller(plain ? stripAnsi(text) : text))
    },
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

