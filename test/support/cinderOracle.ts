/**
 * Runs test/oracle/cinder_posix.py (Cinder's real PosixBackupDriver, from
 * Debian's python3-cinder) once per request and returns its parsed answer.
 *
 * The oracle patches Cinder's globals (config, clock, DB functions) per run,
 * so every request gets a fresh interpreter; runs are queued so that no more
 * than `ORACLE_PARALLELISM` interpreters start at once (each start costs
 * about a CPU-second of imports).
 */
import { spawn } from "node:child_process"
import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { DEBIAN_PYTHON } from "./debianPython.js"

export const ORACLE_SCRIPT = fileURLToPath(new URL("../oracle/cinder_posix.py", import.meta.url))

/** Interpreters running at once: a little above the CPU count, as part of a run is I/O. */
export const ORACLE_PARALLELISM = Math.max(2, availableParallelism() + 1)

/** Kill a run that takes longer than this. */
const ORACLE_TIMEOUT_MS = 55_000

/** A backup record as the oracle reads it (datetimes as ISO strings). */
export interface OracleRecord {
  readonly id: string
  readonly volume_id: string
  readonly parent_id: string | null
  readonly container: string | null
  readonly service_metadata: string | null
  readonly display_name: string | null
  readonly display_description: string | null
  readonly created_at: string
  readonly size: number
  readonly status?: string
  readonly availability_zone?: string | null
  readonly object_count?: number
  readonly service?: string | null
}

interface Common {
  readonly backup_path: string
  readonly backup: OracleRecord
  readonly backups?: ReadonlyArray<OracleRecord>
  readonly volume_size_gib?: number
}

export interface OracleBackupRequest extends Common {
  readonly op: "backup"
  readonly volume_path: string
  readonly compression?: string
  readonly chunk_size?: number
  readonly sha_block_size?: number
  /** YYYYmmddHHMMSS, Cinder's frozen utcnow (the object-name prefix) */
  readonly timestamp?: string
  /** what BackupMetadataAPI.get returns */
  readonly volume_meta?: string | null
}

export interface OracleRestoreRequest extends Common {
  readonly op: "restore"
  readonly volume_path: string
}

/** The record after Cinder's backup ran (only the fields the tests read are typed). */
export interface OracleBackupResult {
  readonly id: string
  readonly volume_id: string
  readonly parent_id: string | null
  readonly container: string
  readonly service_metadata: string
  readonly display_name: string | null
  readonly display_description: string | null
  readonly created_at: string
  readonly size: number
  readonly object_count: number
  readonly status: string
  readonly service: string | null
  readonly availability_zone: string | null
  readonly progress: ReadonlyArray<number>
}

export interface OracleRestoreResult {
  readonly restored: true
  /** the strings handed to BackupMetadataAPI.put, in order */
  readonly volume_meta: ReadonlyArray<string>
}

export class OracleError extends Error {
  override readonly name = "OracleError"
  constructor(
    message: string,
    /** Cinder's exception class, "BadInput", or "Crash" */
    readonly errorClass: string,
    readonly stderr: string
  ) {
    super(message)
  }
}

// ---- a FIFO limit on concurrent interpreters ---------------------------------
let running = 0
const waiting: Array<() => void> = []
const acquire = (): Promise<void> =>
  running < ORACLE_PARALLELISM
    ? (running++, Promise.resolve())
    : new Promise((resolve) => waiting.push(() => (running++, resolve())))
const release = () => {
  running--
  waiting.shift()?.()
}

const tail = (text: string) => (text.length > 4000 ? "…" + text.slice(-4000) : text)

const runOnce = (request: object): Promise<unknown> =>
  new Promise((resolve, reject) => {
    // -I: isolated, so only Debian's own paths (python3-cinder, python3-zstd) count.
    const child = spawn(DEBIAN_PYTHON, ["-I", ORACLE_SCRIPT], { stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    const timer = setTimeout(() => child.kill("SIGKILL"), ORACLE_TIMEOUT_MS)
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("error", (e) => {
      clearTimeout(timer)
      reject(new OracleError(`cannot run ${DEBIAN_PYTHON}: ${e.message}`, "Crash", stderr))
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      let answer: unknown
      try {
        answer = JSON.parse(stdout.trim())
      } catch {
        return reject(
          new OracleError(`oracle exited (code ${code}, signal ${signal}) without JSON: ${tail(stdout)}\n${tail(stderr)}`, "Crash", stderr)
        )
      }
      const failure = answer as { error?: unknown; message?: unknown }
      if (code !== 0 || (typeof answer === "object" && answer !== null && "error" in answer)) {
        const errorClass = typeof failure.error === "string" ? failure.error : "Crash"
        return reject(
          new OracleError(`Cinder oracle failed (exit ${code}): ${errorClass}: ${String(failure.message)}\n${tail(stderr)}`, errorClass, stderr)
        )
      }
      resolve(answer)
    })
    child.stdin.on("error", () => {}) // an early exit is reported by "close"
    child.stdin.end(JSON.stringify(request))
  })

/** One oracle run, queued behind the parallelism limit. */
export function runOracle(request: OracleBackupRequest): Promise<OracleBackupResult>
export function runOracle(request: OracleRestoreRequest): Promise<OracleRestoreResult>
export function runOracle(request: { readonly op: string; readonly [field: string]: unknown }): Promise<unknown>
export async function runOracle(request: { readonly op: string }): Promise<unknown> {
  await acquire()
  try {
    return await runOnce(request)
  } finally {
    release()
  }
}

/** `runOracle` as an Effect that fails with the OracleError. */
export const oracleBackup = (request: OracleBackupRequest) =>
  Effect.tryPromise({ try: () => runOracle(request), catch: (e) => e as OracleError })
export const oracleRestore = (request: OracleRestoreRequest) =>
  Effect.tryPromise({ try: () => runOracle(request), catch: (e) => e as OracleError })
