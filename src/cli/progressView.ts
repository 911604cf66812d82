/**
 * Renders progress events: a bar with bytes, throughput and ETA on a
 * terminal; line-delimited JSON on stderr otherwise (or with --json).
 */
import { Effect } from "effect"
import type { ProgressEvent, ProgressOptions } from "../driver/progress.js"

const units = ["B", "KiB", "MiB", "GiB", "TiB"]

export const formatBytes = (bytes: number): string => {
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`
}

const formatSeconds = (seconds: number) =>
  !Number.isFinite(seconds) ? "--" : seconds < 60 ? `${Math.ceil(seconds)}s` : `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, "0")}s`

export interface ProgressView {
  /** The driver's progress options: the renderer, and how often it wants events (a bar many, a log fewer). */
  readonly options: Required<ProgressOptions>
}

export const makeProgressView = (options: { readonly json: boolean; readonly stream?: NodeJS.WriteStream }): ProgressView => {
  const stream = options.stream ?? process.stderr
  const started = Date.now()
  const throughput = (event: ProgressEvent) => event.bytesDone / Math.max(0.001, (Date.now() - started) / 1000)
  if (options.json || !stream.isTTY) {
    return {
      options: {
        progressEveryObjects: 10,
        progressInterval: "2 seconds",
        onProgress: (event) =>
        Effect.sync(() => {
          const line = { type: "progress", ...event, percent: Math.round(event.percent * 10) / 10, bytesPerSecond: Math.round(throughput(event)) }
          stream.write(JSON.stringify(line) + "\n")
        })
      }
    }
  }
  return {
    options: {
      progressEveryObjects: 1,
      progressInterval: "500 millis",
      onProgress: (event) =>
      Effect.sync(() => {
        const rate = throughput(event)
        const eta = rate > 0 ? (event.bytesTotal - event.bytesDone) / rate : Infinity
        const words =
          `${event.percent.toFixed(0).padStart(3)}% ` +
          `${formatBytes(event.bytesDone)}/${formatBytes(event.bytesTotal)} ` +
          `${formatBytes(rate)}/s ${event.done ? `in ${formatSeconds((Date.now() - started) / 1000)}` : `ETA ${formatSeconds(eta)}`}`
        // One line whatever the terminal's width: a redraw that wraps stacks lines instead of replacing one.
        const columns = Math.max(20, (stream.columns ?? 80) - 1)
        const width = Math.max(0, Math.min(30, columns - event.operation.length - words.length - 2))
        const filled = Math.round((event.percent / 100) * width)
        const bar = width > 0 ? `${"█".repeat(filled)}${"░".repeat(width - filled)} ` : ""
        const text = `${event.operation} ${bar}${words}`.slice(0, columns)
        stream.write(`\r\x1b[2K${text}${event.done ? "\n" : ""}`)
      })
    }
  }
}
