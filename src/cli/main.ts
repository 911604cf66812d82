/** The CLI's entry point (bin/chunked-backup). */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { fixMmapThreshold } from "../codec/native.js"
import { run } from "./run.js"

// Peak memory stays flat with the volume's size (native/malloc.c).
fixMmapThreshold(1024 * 1024)

NodeRuntime.runMain(run(process.argv), { disableErrorReporting: true })
