/**
 * Help text: each command's description with the global options and
 * examples (store URLs of every scheme), and @effect/cli's generic filler
 * lines ("A user-defined piece of text.") taken out of what it prints.
 */
import * as HelpDoc from "@effect/cli/HelpDoc"

export const STORE_SCHEMES =
  "posix:<dir> (default posix:<repo>/store); swift://<keystone host>/v3 or swift+http://<host>:<port>/auth/v1.0 " +
  "(Keystone v3, auth v1.0, or ?auth=token with a storage URL); s3://<bucket>?endpoint=<url>&region=<r>&path-style=true. " +
  "Credentials come from the environment (SWIFT_*, OS_*, AWS_*), never from the URL"

const GLOBAL =
  "Global options (before or after the command): --repo <dir> (env CHUNKED_BACKUP_REPO, default ./chunked-backup-repo), " +
  "--store <url>, --catalog <file> (default <repo>/catalog.sqlite), --json, --verbose. Store URLs: " +
  STORE_SCHEMES +
  "."

/** A command's help: what it does, then the global options and a few example command lines. */
export const described = (summary: string, examples: ReadonlyArray<string>): HelpDoc.HelpDoc =>
  HelpDoc.blocks([
    HelpDoc.p(summary),
    HelpDoc.p(GLOBAL),
    ...(examples.length === 0 ? [] : [HelpDoc.h2("EXAMPLES"), ...examples.map((example) => HelpDoc.p(`$ ${example}`))])
  ])

/** @effect/cli's per-type sentences, which say nothing the usage line does not. */
const FILLER = new Set(["A user-defined piece of text.", "A true or false value.", "An integer.", "This setting is optional."])

/** `text` without the filler lines (and the blank line each leaves behind). */
export const withoutFiller = (text: string): string => {
  const lines = text.split("\n")
  const kept: Array<string> = []
  for (let i = 0; i < lines.length; i++) {
    if (FILLER.has(lines[i]!.trim())) {
      if (kept.length > 0 && kept[kept.length - 1]!.trim() === "") kept.pop()
      continue
    }
    kept.push(lines[i]!)
  }
  return kept.join("\n")
}
