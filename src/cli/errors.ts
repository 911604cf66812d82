/**
 * Every typed error maps to one line that names the backup or object, and to
 * its own exit code (documented in the README).
 */
import * as ValidationError from "@effect/cli/ValidationError"
import { Cause, Option } from "effect"

export const exitCodes = {
  ok: 0,
  internal: 1,
  usage: 2,
  InvalidRequest: 3,
  BackupNotFound: 4,
  RepositoryNotFound: 4,
  InvalidBackup: 5,
  UnsupportedVersion: 5,
  IntegrityError: 6,
  BackupCancelled: 7,
  RestoreCancelled: 8,
  ObjectNotFound: 9,
  ContainerNotFound: 9,
  InvalidObjectName: 9,
  StoreError: 9,
  StoreAuthError: 9,
  ChecksumMismatch: 6,
  StoreUnavailable: 10,
  VolumeError: 11,
  CatalogError: 12,
  CompressionError: 13,
  VolumeMetadataError: 14,
  VolumeBusy: 15,
  VerificationFailed: 16,
  ScanFoundProblems: 17
} as const

/** 128 + the signal's number, as shells report a command a signal stopped: 130 for SIGINT, 143 for SIGTERM. */
export const signalExitCode = (signal: NodeJS.Signals | undefined): number => (signal === "SIGTERM" ? 143 : 130)

export interface Outcome {
  readonly code: number
  readonly message: string
}

/** The exit code and one-line message for how a command ended. */
export const outcomeOf = (cause: Cause.Cause<unknown>): Outcome => {
  if (Cause.isInterruptedOnly(cause)) return { code: 130, message: "interrupted" }
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure)) {
    return { code: exitCodes.internal, message: `internal error: ${Cause.squash(cause)}` }
  }
  const error = failure.value
  if (ValidationError.isValidationError(error)) return { code: exitCodes.usage, message: "" }
  const tag = (error as { _tag?: string })._tag
  const code = tag !== undefined && tag in exitCodes ? exitCodes[tag as keyof typeof exitCodes] : exitCodes.internal
  const message = error instanceof Error ? error.message : String(error)
  return { code, message }
}
