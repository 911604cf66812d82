/**
 * Backup ids as people type them: whole, or a unique prefix.
 */
import { Effect, Option } from "effect"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import { InvalidRequest } from "../domain/errors.js"
import { someOf } from "../format/untrusted.js"

/** Shortest id prefix accepted in place of an id. */
const MIN_PREFIX = 8

/**
 * The id of the backup `given` names: itself when a record has it, else the
 * one record whose id starts with it (at least MIN_PREFIX characters); an
 * ambiguous prefix is refused with the candidates.
 */
export const resolveBackupId = (given: string) =>
  Effect.gen(function* () {
    const catalog = yield* BackupCatalog
    const exact = yield* Effect.option(catalog.get(given))
    if (Option.isSome(exact) || given === "") return given
    const matches = (yield* catalog.list()).filter((r) => r.id.startsWith(given))
    if (given.length < MIN_PREFIX) {
      if (matches.length === 0) return given
      return yield* new InvalidRequest({ reason: `${given} is too short to name a backup: give at least ${MIN_PREFIX} characters of its id` })
    }
    if (matches.length === 1) return matches[0]!.id
    if (matches.length > 1) {
      return yield* new InvalidRequest({ reason: `${given} is the start of ${matches.length} backups' ids (${someOf(matches.map((r) => r.id))}); give more of the id` })
    }
    return given
  })
