/**
 * Test helpers that look at state: snapshots of a store, a directory tree and
 * the catalog (to prove a failing operation changed nothing), and the typed
 * error of a failed Exit (never a defect).
 */
import { expect } from "@effect/vitest"
import { Cause, Effect, Exit, Option } from "effect"
import { lstatSync, readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"
import { BackupCatalog, type ObjectStore } from "../../src/index.js"

/** Every object of the given containers: `container | name` → bytes as hex (containers that cannot be listed have none). */
export const storeSnapshot = (store: ObjectStore, containers: Iterable<string>) =>
  Effect.gen(function* () {
    const snapshot: Record<string, string> = {}
    for (const container of [...new Set(containers)].sort()) {
      const names = yield* Effect.either(store.list(container, ""))
      if (names._tag === "Left") continue
      for (const name of names.right) {
        snapshot[`${container} | ${name}`] = Buffer.from(yield* Effect.orDie(store.get(container, name))).toString("hex")
      }
    }
    return snapshot
  })

/** Every file, directory and other entry under `root`: relative path → mode and contents (hex). */
export const treeSnapshot = (root: string): Record<string, string> => {
  const snapshot: Record<string, string> = {}
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name)
      const info = lstatSync(path)
      const key = relative(root, path)
      if (info.isDirectory()) {
        snapshot[key] = `dir ${(info.mode & 0o777).toString(8)}`
        walk(path)
      } else if (info.isFile()) {
        snapshot[key] = `file ${(info.mode & 0o777).toString(8)} ${readFileSync(path).toString("hex")}`
      } else {
        snapshot[key] = `other ${info.mode.toString(8)}`
      }
    }
  }
  walk(root)
  return snapshot
}

/** The catalog's records by id, without `updated_at` (which any status round trip moves). */
export const catalogSnapshot = Effect.gen(function* () {
  const records = yield* Effect.orDie((yield* BackupCatalog).list())
  return Object.fromEntries(
    [...records].sort((a, b) => a.id.localeCompare(b.id)).map(({ updated_at: _, ...rest }) => [rest.id, rest])
  )
})

/** The error of a failed Exit; fails the test when it succeeded or died. */
export const typedFailure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a typed failure, got success: ${String(exit.value)}`)
  const defect = Cause.dieOption(exit.cause)
  if (Option.isSome(defect)) throw new Error(`expected a typed failure, got a defect: ${Cause.pretty(exit.cause)}`)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got: ${Cause.pretty(exit.cause)}`)
  expect(failure.value).toHaveProperty("_tag")
  return failure.value
}
