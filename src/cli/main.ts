/** The CLI's entry point (bin/chunked-backup). */
import { NodeRuntime } from "@effect/platform-node"
import { run } from "./run.js"

NodeRuntime.runMain(run(process.argv), { disableErrorReporting: true })
