/**
 * `chunked-backup restore <backup-id> <target> [--new] [--no-verify-sha256]`:
 * a backup and its chain into a file, a device or standard output. Made by
 * commands.ts from its shared pieces (handed in).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { Effect, Option } from "effect"
import { fstatSync, statSync } from "node:fs"
import { resolve } from "node:path"
import { InvalidRequest } from "../domain/errors.js"
import { restore } from "../driver/restore.js"
import { volumeInfo } from "../driver/volume.js"
import { writableTarget } from "../driver/volumeTarget.js"
import { resolveBackupId } from "./backupId.js"
import type { CommandKit } from "./commands.js"
import { described } from "./help.js"
import { reportInterruption } from "./interruption.js"
import { formatBytes, makeProgressView } from "./progressView.js"

/** True when `path` is this process's standard output (/dev/stdout, /dev/fd/1, or the file it is redirected to): the messages then go to stderr. */
const isStandardOutput = (path: string) => {
  try {
    const [out, target] = [fstatSync(1), statSync(path)]
    return out.dev === target.dev && out.ino === target.ino
  } catch {
    return false
  }
}

export const makeRestoreCommand = ({ withCodecServices, print, summarize, backupIdArg }: CommandKit) =>
  Command.make(
    "restore",
    {
      backupId: backupIdArg,
      target: Args.text({ name: "target" }).pipe(Args.withDescription("file (created if missing) or block device; - for standard output")),
      fresh: Options.boolean("new").pipe(Options.withDescription("the target is new and zeroed: keep it sparse")),
      skipSha256: Options.boolean("no-verify-sha256").pipe(
        Options.withDescription("check objects by md5 only, as Cinder does (default: every block is also checked against the backup's sha256 list before it is written)")
      ),
      concurrency: Options.integer("concurrency").pipe(Options.withDescription("objects fetched at once (default: the store's)"), Options.optional)
    },
    (args) =>
      withCodecServices((options) =>
        Effect.gen(function* () {
          const backupId = yield* resolveBackupId(args.backupId)
          const toStdout = args.target === "-" || isStandardOutput(resolve(args.target))
          if (toStdout && args.fresh) return yield* new InvalidRequest({ reason: "--new is for a file or device: standard output (-) is written in full, in order" })
          if (toStdout && process.stdout.isTTY) return yield* new InvalidRequest({ reason: "standard output is a terminal: redirect it to a file or pipe to restore there (-)" })
          const view = makeProgressView({ json: options.json })
          const where = toStdout ? "standard output" : args.target
          const result = yield* restore(backupId, toStdout ? writableTarget(process.stdout, "standard output") : resolve(args.target), {
            volumeIsNew: args.fresh,
            verifySha256: !args.skipSha256,
            ...Option.match(args.concurrency, { onNone: () => ({}), onSome: (concurrency) => ({ concurrency }) }),
            ...view.options,
            ...options.lease
          }).pipe(
            reportInterruption(backupId, (status) => `restore of ${backupId} interrupted: ${where} holds a partial volume; the backup is ${status}`)
          )
          // Cinder leaves a larger volume's tail as it was; say so, as a script may not expect it.
          const target = toStdout ? Option.none() : yield* Effect.option(volumeInfo(resolve(args.target)))
          if (Option.isSome(target) && target.value.size > result.bytes) {
            yield* Effect.sync(() =>
              process.stderr.write(`warning: ${args.target} holds ${target.value.size} bytes; the ${target.value.size - result.bytes} bytes past the volume's end (${result.bytes}) were left as they were\n`)
            )
          }
          const summary = yield* summarize(view, options)
          const json = { ...result, target: toStdout ? "-" : resolve(args.target), ...summary }
          const text = `restored ${backupId} (${result.backups} backup(s), ${formatBytes(result.bytes)}) to ${where}${result.sha256Checked ? ", every block checked against its sha256" : ", md5s only"}`
          // The volume owns standard output: the result goes to stderr then.
          yield* toStdout ? Effect.sync(() => process.stderr.write(`${options.json ? JSON.stringify(json) : text}\n`)) : print(options, json, text)
        })
      )
  ).pipe(Command.withDescription(described("restore a backup and its chain into a file or device", ["chunked-backup restore 7dc7af47 restored.img --new", "chunked-backup restore 7dc7af47 /dev/vdc", "chunked-backup restore 7dc7af47 - | ssh host dd of=/dev/vdb bs=1M", "chunked-backup --store 'swift://keystone.example.com:5000/v3?region=RegionOne' restore 7dc7af47 restored.img"])))
