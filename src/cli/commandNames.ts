/** The CLI's commands by name: what the launcher keys its code cache by (a test holds it to the commands of --help). */
export const COMMAND_NAMES: ReadonlyArray<string> = [
  "backup",
  "restore",
  "delete",
  "list",
  "show",
  "cancel",
  "export-record",
  "import-record",
  "verify",
  "cleanup",
  "scan",
  "prune",
  "copy"
]
