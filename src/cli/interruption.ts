/**
 * What the CLI says when a command is stopped by a signal.
 */
import { Effect } from "effect"
import { BackupCatalog } from "../catalog/BackupCatalog.js"

/**
 * When the command is interrupted (Ctrl-C, SIGTERM), after the program's own
 * clean-up ran: one line on stderr saying what was stopped and what is left,
 * from the record's status then.
 */
export const reportInterruption = (backupId: string, say: (status: string) => string) =>
  <A, E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.onInterrupt(self, () =>
      Effect.flatMap(BackupCatalog, (catalog) => catalog.get(backupId)).pipe(
        Effect.map((record) => say(record.status)),
        Effect.orElseSucceed(() => say("unknown")),
        Effect.flatMap((line) => Effect.sync(() => process.stderr.write(`\n${line}\n`)))
      )
    )

export const afterInterruptedBackup = (backupId: string) => (status: string) =>
  status === "error" || status === "deleted"
    ? `backup ${backupId} interrupted: the objects it wrote were deleted; its record is ${status}`
    : `backup ${backupId} interrupted: its record is ${status}; objects it wrote are left for \`chunked-backup cleanup\``
