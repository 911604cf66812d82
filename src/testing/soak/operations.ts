/**
 * The soak's operations, each one CLI process (or two: a cancel or a kill
 * aimed at a running one) on one volume. Each counts its outcome, records
 * what the catalog must show at the next check (an `obligation`), and
 * reports as a violation any exit a user should never see: 1 (a bug), a
 * restore whose bytes differ from what its backup read, a cancel that did
 * not stop its operation.
 */
import { Effect } from "effect"
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { exitCodes } from "../../cli/errors.js"
import type { Running } from "./process.js"
import { count, IN_PROGRESS, said, startCli, violation, type ListedRecord, type OperationKind, type SoakState } from "./state.js"
import { sha256Of, type Volume } from "./volumes.js"

const COMPRESSIONS = ["none", "zlib", "bz2", "zstd"]

const finished = (running: Running) => Effect.promise(() => running.finished)

/** Counts `kind` and flags an exit code that `allowed` does not name. */
const judge = (state: SoakState, kind: OperationKind, args: ReadonlyArray<string>, r: Awaited<Running["finished"]>, allowed: Record<number, string>) => {
  state.summary.operations[kind]++
  const outcome = r.code === null ? undefined : allowed[r.code]
  if (outcome === undefined) {
    count(state, kind, `unexpected exit ${r.code ?? r.signal}`)
    violation(state, `${kind}: ${said(args, r)}`)
  } else count(state, kind, outcome)
  return outcome
}

const backupArgs = (state: SoakState, volume: Volume, id: string, incremental: boolean, fromStdin: boolean) => [
  "backup",
  fromStdin ? "-" : volume.path,
  ...(fromStdin ? ["--size", String(volume.bytes.length)] : []),
  "--volume-id", volume.id,
  "--backup-id", id,
  "--chunk-size", String(volume.chunkSize),
  "--compression", state.rng.pick(COMPRESSIONS),
  ...(incremental ? ["--incremental"] : [])
]

/** The refusals a backup may meet: its volume busy (a killed backup's live lease), no parent for an incremental. */
const backupRefusals = { [exitCodes.VolumeBusy]: "refused (volume busy)", [exitCodes.InvalidRequest]: "refused (no parent)" }

export const backupOp = (state: SoakState, volume: Volume, incremental: boolean) =>
  Effect.gen(function* () {
    const id = state.rng.uuid()
    state.expected.set(id, sha256Of(volume.bytes))
    const args = backupArgs(state, volume, id, incremental, false)
    const r = yield* finished(startCli(state, args))
    const outcome = judge(state, incremental ? "incremental" : "backup", args, r, { 0: "ok", ...backupRefusals })
    if (outcome === "ok") {
      state.obligations.set(id, { statuses: ["available"], why: `its backup exited 0` })
    }
  })

const availableOf = (state: SoakState, volume: Volume) =>
  state.records.filter((r) => r.volume_id === volume.id && r.status === "available")

const dependents = (state: SoakState, id: string) => state.records.filter((r) => r.parent_id === id && r.status !== "deleted")

/** Restores one of the volume's available backups (to a new file, over an old one, or to standard output) and compares its sha256. */
export const restoreOp = (state: SoakState, volume: Volume, record: ListedRecord) =>
  Effect.gen(function* () {
    const expected = state.expected.get(record.id)
    const how = state.rng.pick(["new", "over", "stdout"] as const)
    const file = join(state.dir, `restore-${state.step}-${volume.id.slice(0, 8)}.img`)
    rmSync(file, { force: true })
    // An old volume of the same size with other bytes: every byte must be written.
    if (how === "over") writeFileSync(file, state.rng.bytes(volume.bytes.length))
    const args = ["restore", record.id, how === "stdout" ? "-" : file, ...(how === "new" ? ["--new"] : [])]
    const r = yield* finished(startCli(state, args, { hashStdout: how === "stdout" }))
    if (judge(state, "restore", args, r, { 0: `ok (${how})` }) === undefined) return
    const actual = how === "stdout" ? r.stdoutSha256 : existsSync(file) ? sha256Of(readFileSync(file)) : "no file"
    rmSync(file, { force: true })
    if (actual !== expected) violation(state, `restore of ${record.id} (${how}) has sha256 ${actual}, the volume when it was backed up had ${expected}`)
  })

/** Deletes a backup nothing depends on, or (now and then) tries one that has dependents, which must be refused. */
export const deleteOp = (state: SoakState, volume: Volume) =>
  Effect.gen(function* () {
    const mine = state.records.filter((r) => r.volume_id === volume.id && (r.status === "available" || r.status === "error"))
    const leaves = mine.filter((r) => dependents(state, r.id).length === 0)
    const parents = mine.filter((r) => dependents(state, r.id).length > 0)
    const refused = parents.length > 0 && (leaves.length === 0 || state.rng.chance(0.2))
    const record = refused ? state.rng.pick(parents) : leaves.length > 0 ? state.rng.pick(leaves) : undefined
    if (record === undefined) return yield* backupOp(state, volume, false)
    const args = ["delete", record.id]
    const r = yield* finished(startCli(state, args))
    const outcome = judge(state, "delete", args, r, refused ? { [exitCodes.InvalidRequest]: "refused (dependents)" } : { 0: "ok" })
    if (outcome === "ok") state.obligations.set(record.id, { statuses: ["deleted"], why: "its delete exited 0" })
    if (outcome !== undefined && refused) state.obligations.set(record.id, { statuses: [record.status], why: "its delete was refused" })
  })

export const cleanupOp = (state: SoakState) =>
  Effect.gen(function* () {
    const startedAt = Date.now()
    const args = ["cleanup"]
    const r = yield* finished(startCli(state, args))
    const ok = judge(state, "cleanup", args, r, { 0: "ok" }) !== undefined
    state.lastCleanup = `cleanup at ${new Date(startedAt).toISOString()}: ${r.stdout.trim().replaceAll("\n", "; ")}`
    return ok ? startedAt : undefined
  })

/** A backup read from standard input, fed slowly enough (about 4 s in all) that it runs while a cancel or kill arrives. */
const slowBackup = (state: SoakState, volume: Volume, id: string) => {
  const incremental = availableOf(state, volume).length > 0 && state.rng.chance(0.6)
  state.expected.set(id, sha256Of(volume.bytes))
  const piece = 32 * 1024
  const args = backupArgs(state, volume, id, incremental, true)
  const paceMs = Math.ceil(4000 / Math.ceil(volume.bytes.length / piece))
  return { args, running: startCli(state, args, { input: { bytes: volume.bytes, piece, paceMs } }) }
}

/** A restore to standard output that the soak does not read until told: it blocks on its pipe meanwhile. */
const heldRestore = (state: SoakState, record: ListedRecord) => {
  const args = ["restore", record.id, "-"]
  return { args, running: startCli(state, args, { hashStdout: true, holdStdout: true }) }
}

/**
 * A moment chosen at random after the start, mostly mid-operation: the CLI
 * starts in about 0.3 s and a slow backup is fed for 4 s. (Its stderr says
 * little before the end, and a restore blocked on its pipe blocks Node's
 * event loop: no signal of progress to wait for.)
 */
const midway = (state: SoakState, minMs: number, maxMs: number) => Effect.sleep(state.rng.int(minMs, maxMs))

const cancelOf = (state: SoakState, id: string) =>
  Effect.gen(function* () {
    state.summary.faults.cancels++
    return yield* finished(startCli(state, ["cancel", id]))
  })

export const cancelBackupOp = (state: SoakState, volume: Volume) =>
  Effect.gen(function* () {
    const id = state.rng.uuid()
    const { args, running } = slowBackup(state, volume, id)
    yield* midway(state, 300, 1800)
    const cancel = yield* cancelOf(state, id)
    const r = yield* finished(running)
    if (cancel.code === 0) {
      judge(state, "cancel-backup", args, r, { [exitCodes.BackupCancelled]: "cancelled" })
      state.obligations.set(id, { statuses: ["error", "deleted"], why: "its backup was cancelled" })
      return
    }
    // Too early (no record yet, or the backup was refused before it made one): the backup goes on, or was refused.
    if (cancel.code !== exitCodes.BackupNotFound) violation(state, `cancel of a running backup: ${said(["cancel", id], cancel)}`)
    const outcome = judge(state, "cancel-backup", args, r, { 0: "ok (the cancel came before its record)", ...backupRefusals })
    if (outcome?.startsWith("ok") === true) state.obligations.set(id, { statuses: ["available"], why: "its backup exited 0" })
  })

export const cancelRestoreOp = (state: SoakState, record: ListedRecord) =>
  Effect.gen(function* () {
    const { args, running } = heldRestore(state, record)
    yield* midway(state, 300, 1500)
    const cancel = yield* cancelOf(state, record.id)
    running.resume()
    const r = yield* finished(running)
    if (cancel.code === 0) {
      judge(state, "cancel-restore", args, r, { [exitCodes.RestoreCancelled]: "cancelled" })
      state.obligations.set(record.id, { statuses: ["available"], why: "its restore was cancelled" })
      return
    }
    // Too early: the restore had not claimed its backup yet (it cannot have ended: its output is held).
    if (cancel.code !== exitCodes.InvalidRequest) violation(state, `cancel of a restore held on its pipe: ${said(["cancel", record.id], cancel)}`)
    if (judge(state, "cancel-restore", args, r, { 0: "ok (the cancel came before its claim)" }) !== undefined && r.stdoutSha256 !== state.expected.get(record.id)) {
      violation(state, `restore of ${record.id} to standard output has sha256 ${r.stdoutSha256}, the volume when it was backed up had ${state.expected.get(record.id)}`)
    }
  })

/** kill -9 of a running backup, restore or delete; its record is left for the lease and `cleanup` to settle. */
export const killOp = (state: SoakState, volume: Volume, preferred?: "kill-backup" | "kill-restore" | "kill-delete") =>
  Effect.gen(function* () {
    const available = availableOf(state, volume)
    const leaves = available.filter((r) => dependents(state, r.id).length === 0)
    const possible = available.length === 0 ? ["kill-backup"] as const : leaves.length > 0 ? ["kill-backup", "kill-restore", "kill-delete"] as const : ["kill-backup", "kill-restore"] as const
    const kind: OperationKind = preferred !== undefined && (possible as ReadonlyArray<string>).includes(preferred) ? preferred : state.rng.pick(possible)
    const started =
      kind === "kill-backup" ? slowBackup(state, volume, state.rng.uuid())
      : kind === "kill-restore" ? heldRestore(state, state.rng.pick(available))
      : (() => {
          const args = ["delete", state.rng.pick(leaves).id]
          return { args, running: startCli(state, args) }
        })()
    // A delete is quick: killed at a random moment of its life, start-up included.
    if (kind === "kill-delete") yield* Effect.sleep(state.rng.int(100, 700))
    else yield* midway(state, 200, 1800)
    started.running.child.kill("SIGKILL")
    state.lastKillAt = Date.now()
    state.summary.faults.kills++
    started.running.resume()
    const r = yield* finished(started.running)
    if (r.signal === "SIGKILL") {
      state.summary.operations[kind]++
      count(state, kind, "killed")
    } else judge(state, kind, started.args, r, { 0: "ended before the kill", [exitCodes.VolumeBusy]: "refused (volume busy) before the kill" })
  })

/** Whether a record's status is one an operation is still working on (or a killed one left). */
export const inProgress = (record: ListedRecord) => IN_PROGRESS.includes(record.status)
