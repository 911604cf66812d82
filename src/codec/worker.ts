/**
 * A codec worker thread: answers the pool's requests (src/codec/protocol.ts)
 * one at a time with the job functions of src/codec/jobs.ts. Started by the
 * pool from the compiled file (dist/src/codec/worker.js).
 */
import { parentPort, workerData } from "node:worker_threads"
import { answer } from "./jobs.js"
import type { Reply, Request, WorkerData } from "./protocol.js"

const counters = workerData as WorkerData
const port = parentPort!

port.on("message", (request: Request) => {
  answer(request, counters).then(
    ({ reply, transfer }) => port.postMessage(reply, [...transfer]),
    (error: unknown) => {
      const failed: Reply = { op: "failed", id: request.id, error: error instanceof Error ? error.message : String(error) }
      port.postMessage(failed)
    }
  )
})
