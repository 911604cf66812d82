/**
 * What the CLI writes through the Console service (@effect/cli's help among
 * it), transformed on the way out: without ANSI styles where colour does not
 * belong (stdout not a terminal, NO_COLOR set — no-color.org — or
 * TERM=dumb), and help without its filler lines.
 */
import { Console, Effect } from "effect"

const ANSI_STYLE = /\x1b\[[0-9;]*m/g

/** Whether output should carry no ANSI styles. */
export const wantsPlainOutput = (env: NodeJS.ProcessEnv = process.env, stdout: { readonly isTTY?: boolean } = process.stdout): boolean =>
  stdout.isTTY !== true || (env.NO_COLOR !== undefined && env.NO_COLOR !== "") || env.TERM === "dumb"

export const stripAnsi = (text: string): string => text.replace(ANSI_STYLE, "")

/** `console` with `transform` applied to every string `log` and `error` print. */
const transforming = (console: Console.Console, transform: (text: string) => string): Console.Console => {
  const each = (args: ReadonlyArray<unknown>) => args.map((arg) => (typeof arg === "string" ? transform(arg) : arg))
  return {
    ...console,
    log: (...args) => console.log(...each(args)),
    error: (...args) => console.error(...each(args)),
    unsafe: {
      ...console.unsafe,
      log: (...args) => console.unsafe.log(...each(args)),
      error: (...args) => console.unsafe.error(...each(args))
    }
  }
}

/** Runs `program` with the current Console transforming what it prints. */
export const withConsoleText = <A, E, R>(program: Effect.Effect<A, E, R>, transform: (text: string) => string): Effect.Effect<A, E, R> =>
  Console.consoleWith((console) => Effect.withConsole(program, transforming(console, transform)))
