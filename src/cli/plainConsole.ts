/**
 * Help and messages without colour where colour does not belong: when stdout
 * is not a terminal (a pipe, a file), with NO_COLOR set (no-color.org) or
 * with TERM=dumb. @effect/cli renders help with ANSI styles through the
 * Console service; this Console strips them before they are written.
 */
import { Console, Effect } from "effect"

const ANSI_STYLE = /\x1b\[[0-9;]*m/g

/** Whether output should carry no ANSI styles. */
export const wantsPlainOutput = (env: NodeJS.ProcessEnv = process.env, stdout: { readonly isTTY?: boolean } = process.stdout): boolean =>
  stdout.isTTY !== true || (env.NO_COLOR !== undefined && env.NO_COLOR !== "") || env.TERM === "dumb"

const plain = (args: ReadonlyArray<unknown>) => args.map((arg) => (typeof arg === "string" ? arg.replace(ANSI_STYLE, "") : arg))

/** `console` with ANSI styles removed from what `log` and `error` print. */
const stripping = (console: Console.Console): Console.Console => ({
  ...console,
  log: (...args) => console.log(...plain(args)),
  error: (...args) => console.error(...plain(args)),
  unsafe: {
    ...console.unsafe,
    log: (...args) => console.unsafe.log(...plain(args)),
    error: (...args) => console.unsafe.error(...plain(args))
  }
})

/** Runs `program` with the current Console stripping ANSI styles. */
export const withPlainConsole = <A, E, R>(program: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Console.consoleWith((console) => Effect.withConsole(program, stripping(console)))
