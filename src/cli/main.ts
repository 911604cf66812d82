/** The CLI's entry point (bin/chunked-backup). */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Exit } from "effect"
import { fixMmapThreshold } from "../codec/native.js"
import { signalExitCode } from "./errors.js"
import { run } from "./run.js"

// Peak memory stays flat with the volume's size (native/malloc.c).
fixMmapThreshold(1024 * 1024)

// The runtime interrupts the command on SIGINT/SIGTERM (its finalizers clean
// up); which signal it was decides the exit code. Once: a second signal kills.
let signal: NodeJS.Signals | undefined
for (const name of ["SIGINT", "SIGTERM"] as const) process.prependOnceListener(name, () => void (signal ??= name))

NodeRuntime.runMain(run(process.argv), {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) {
      process.stderr.write(`chunked-backup: interrupted by ${signal ?? "a signal"}\n`)
      return onExit(signalExitCode(signal))
    }
    // `run` turns every failure into process.exitCode; anything else is a bug.
    onExit(Exit.isFailure(exit) ? 1 : 0)
  }
})
