/** The CLI's entry point (bin/chunked-backup). */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { run } from "./run.js"

NodeRuntime.runMain(run(process.argv), { disableErrorReporting: true })
