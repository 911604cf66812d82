/**
 * In-memory BackupCatalog. A SubscriptionRef holds all records, so `watch`
 * is a projection of its change stream.
 */
import { Effect, Layer, Option, Stream, SubscriptionRef } from "effect"
import { BackupNotFound, CatalogError } from "../domain/errors.js"
import type { BackupRecord } from "../domain/record.js"
import { BackupCatalog } from "./BackupCatalog.js"

type Records = ReadonlyMap<string, BackupRecord>

/** A new, empty in-memory catalog. */
export const makeMemoryCatalog = (): Effect.Effect<BackupCatalog> => Effect.gen(function* () {
  const ref = yield* SubscriptionRef.make<Records>(new Map())

  // f returns the result and the new record, or undefined to change nothing.
  const modify = <A>(id: string, f: (record: BackupRecord) => readonly [A, BackupRecord | undefined]) =>
    SubscriptionRef.modifyEffect(ref, (records): Effect.Effect<readonly [A, Records], BackupNotFound> => {
      const record = records.get(id)
      if (record === undefined) return Effect.fail(new BackupNotFound({ backupId: id }))
      const [result, next] = f(record)
      if (next === undefined) return Effect.succeed([result, records] as const)
      return Effect.succeed([result, new Map(records).set(id, next)] as const)
    })

  return BackupCatalog.of({
    get: (id) =>
      Effect.flatMap(SubscriptionRef.get(ref), (records) =>
        Option.match(Option.fromNullable(records.get(id)), {
          onNone: () => Effect.fail(new BackupNotFound({ backupId: id })),
          onSome: Effect.succeed
        })
      ),
    list: (filter) =>
      Effect.map(SubscriptionRef.get(ref), (records) =>
        [...records.values()]
          .filter((record) => filter?.volumeId === undefined || record.volume_id === filter.volumeId)
          .filter((record) => filter?.statuses === undefined || filter.statuses.includes(record.status))
          .sort((a, b) => a.created_at.getTime() - b.created_at.getTime())
      ),
    create: (record) =>
      SubscriptionRef.modifyEffect(ref, (records) =>
        records.has(record.id)
          ? Effect.fail(new CatalogError({ operation: "create", backupId: record.id, reason: "a backup with this id exists" }))
          : Effect.succeed([undefined, new Map(records).set(record.id, record)] as const)
      ),
    update: (id, change) =>
      modify(id, (record) => {
        const next = { ...change(record), updated_at: new Date() }
        return [next, next] as const
      }),
    transition: (id, from, to, failReason) =>
      modify(id, (record) =>
        from.includes(record.status)
          ? ([true, { ...record, status: to, fail_reason: failReason ?? record.fail_reason, updated_at: new Date() }] as const)
          : ([false, undefined] as const)
      ),
    remove: (id, from) =>
      SubscriptionRef.modify(ref, (records) => {
        const record = records.get(id)
        if (record === undefined || !from.includes(record.status)) return [false, records] as const
        const next = new Map(records)
        next.delete(id)
        return [true, next] as const
      }),
    watch: (id) =>
      ref.changes.pipe(
        Stream.map((records) => records.get(id)?.status),
        Stream.takeWhile((status) => status !== undefined),
        Stream.map((status) => status!),
        Stream.changes
      )
  })
})

/** An in-memory catalog, new and empty each time the layer is built. */
export const layerMemoryCatalog = (): Layer.Layer<BackupCatalog> => Layer.effect(BackupCatalog, makeMemoryCatalog())
