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

/**
 * Bytes per second for the ETA, smoothed: the average since the start for
 * the first `tau` seconds, then an exponentially weighted rate with time
 * constant `tau`, so that one slow object or a pause of the network does not
 * swing the ETA, yet a lasting change of speed shows within a few `tau`.
 */
export const makeRateMeter = (tau = 10) => {
  let last: { readonly bytes: number; readonly seconds: number } | undefined
  let rate = 0
  return (bytes: number, seconds: number): number => {
    const dt = last === undefined ? seconds : seconds - last.seconds
    if (dt <= 0) return rate
    if (seconds <= tau || last === undefined) rate = bytes / Math.max(0.001, seconds)
    else rate += (1 - Math.exp(-dt / tau)) * ((bytes - last.bytes) / dt - rate)
    last = { bytes, seconds }
    return rate
  }
}

export interface ProgressView {
  /** The driver's progress options: the renderer, and how often it wants events (a bar many, a log fewer). */
  readonly options: Required<ProgressOptions>
  /** The operation's last event (the final one, once it is done). */
  readonly last: () => ProgressEvent | undefined
}

/** What an operation did, from its final progress event: fields for --json, and a line for people. */
export const summaryOf = (event: ProgressEvent) => {
  const rate = event.bytesTotal / Math.max(0.001, event.seconds)
  const fields = {
    bytes: event.bytesTotal,
    objects: event.objects,
    seconds: Math.round(event.seconds * 1000) / 1000,
    bytesPerSecond: Math.round(rate),
    ...(event.bytesChanged === undefined ? {} : { bytesChanged: event.bytesChanged }),
    ...(event.bytesStored === undefined ? {} : { bytesStored: event.bytesStored }),
    ...(event.bytesRead === undefined ? {} : { bytesRead: event.bytesRead })
  }
  const verb = { backup: "read", restore: "restored", verify: "checked", copy: "checked" }[event.operation]
  const stored =
    event.bytesStored === undefined
      ? ""
      : `, changed ${formatBytes(event.bytesChanged ?? 0)}, stored ${formatBytes(event.bytesStored)} (after compression) in`
  const line =
    `${event.operation}: ${verb} ${event.bytesRead !== undefined && event.bytesRead < event.bytesTotal ? `${formatBytes(event.bytesRead)} of ` : ""}${formatBytes(event.bytesTotal)}${stored === "" ? "," : stored} ${event.objects} object${event.objects === 1 ? "" : "s"}, ` +
    `${event.seconds.toFixed(1)} s (${formatBytes(rate)}/s)`
  return { fields, line }
}

export const makeProgressView = (options: { readonly json: boolean; readonly stream?: NodeJS.WriteStream }): ProgressView => {
  const stream = options.stream ?? process.stderr
  const meter = makeRateMeter()
  // The smoothed rate while it runs; the average at the end.
  const throughput = (event: ProgressEvent) =>
    event.done ? event.bytesTotal / Math.max(0.001, event.seconds) : meter(event.bytesDone, event.seconds)
  let last: ProgressEvent | undefined
  const keep = (render: (event: ProgressEvent) => Effect.Effect<void>) => (event: ProgressEvent) =>
    Effect.zipRight(Effect.sync(() => void (last = event)), render(event))
  if (options.json || !stream.isTTY) {
    return {
      last: () => last,
      options: {
        progressEveryObjects: 10,
        progressInterval: "2 seconds",
        onProgress: keep((event) =>
        Effect.sync(() => {
          const line = { type: "progress", ...event, percent: Math.round(event.percent * 10) / 10, bytesPerSecond: Math.round(throughput(event)) }
          stream.write(JSON.stringify(line) + "\n")
        }))
      }
    }
  }
  return {
    last: () => last,
    options: {
      progressEveryObjects: 1,
      progressInterval: "500 millis",
      onProgress: keep((event) =>
      Effect.sync(() => {
        const rate = throughput(event)
        const eta = rate > 0 ? (event.bytesTotal - event.bytesDone) / rate : Infinity
        const words =
          `${event.percent.toFixed(0).padStart(3)}% ` +
          `${formatBytes(event.bytesDone)}/${formatBytes(event.bytesTotal)} ` +
          `${formatBytes(rate)}/s ${event.done ? `in ${formatSeconds(event.seconds)}` : `ETA ${formatSeconds(eta)}`}`
        // One line whatever the terminal's width: a redraw that wraps stacks lines instead of replacing one.
        const columns = Math.max(20, (stream.columns ?? 80) - 1)
        const width = Math.max(0, Math.min(30, columns - event.operation.length - words.length - 2))
        const filled = Math.round((event.percent / 100) * width)
        const bar = width > 0 ? `${"█".repeat(filled)}${"░".repeat(width - filled)} ` : ""
        const text = `${event.operation} ${bar}${words}`.slice(0, columns)
        stream.write(`\r\x1b[2K${text}${event.done ? "\n" : ""}`)
      }))
    }
  }
}
