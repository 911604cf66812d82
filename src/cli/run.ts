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

/** The command's flags that take no value: a `-` after one of them is an argument, not the flag's value. */
const flagsWithoutValue = new Set(["--all", "--full", "--incremental", "--json", "--new", "--no-verify-sha256", "--verbose", "--help", "-h"])

/**
 * `-` (standard input or output) as an argument goes last: @effect/cli takes
 * anything that starts with "-" for an option, and then refuses the options
 * that follow it ("Received unknown argument: '--size'"). A `-` that is an
 * option's value stays where it is.
 */
export const movePipeArgument = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const args = argv.slice(2)
  const at = args.findIndex((arg, i) => arg === "-" && !(i > 0 && args[i - 1]!.startsWith("-") && !flagsWithoutValue.has(args[i - 1]!)))
  const end = args.indexOf("--")
  if (at === -1 || (end !== -1 && end < at)) return argv
  const rest = [...args.slice(0, at), ...args.slice(at + 1)]
  const stop = rest.indexOf("--")
  if (stop !== -1) rest.splice(stop, 0, "-")
  else rest.push("-")
  return [...argv.slice(0, 2), ...rest]
}

export const run = (argv: ReadonlyArray<string>) =>
  Command.run(command, { name: "chunked-backup", version: "0.1.0" })(movePipeArgument(hoistGlobalOptions(argv))).pipe(
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

