/**
 * The destination of a copy, side by side with the source.
 *
 * Why a second tag rather than parameters: every driver helper (leases,
 * document reads, object listing) asks for `ObjectStore` and `BackupCatalog`
 * by tag. The source keeps those tags; the destination's pair lives under
 * `CopyDestination`, and `atDestination` re-provides the two ordinary tags
 * from it for a part of the program, so the same helpers run on either side
 * without a second version of each. A library user builds it from the
 * layers they already have (`layerCopyDestination`).
 */
import { Context, Effect, Layer } from "effect"
import { BackupCatalog } from "../catalog/BackupCatalog.js"
import { ObjectStore } from "../store/ObjectStore.js"

/** The store and catalog a copy writes to. */
export interface CopyDestinationServices {
  readonly store: ObjectStore
  readonly catalog: BackupCatalog
}

/** The destination of `copy`: its ObjectStore and BackupCatalog, apart from the source's. */
export class CopyDestination extends Context.Tag("chunked-backup/CopyDestination")<CopyDestination, CopyDestinationServices>() {}

/**
 * The CopyDestination made of an ordinary store and catalog layer (what a
 * backup would be given); their resources live as long as the layer.
 */
export const layerCopyDestination = <E, R>(
  services: Layer.Layer<ObjectStore | BackupCatalog, E, R>
): Layer.Layer<CopyDestination, E, R> =>
  Layer.scoped(
    CopyDestination,
    Effect.map(Layer.build(services), (context) => ({ store: Context.get(context, ObjectStore), catalog: Context.get(context, BackupCatalog) }))
  )

/** Runs `self` with the destination's store and catalog as its ObjectStore and BackupCatalog. */
export const atDestination = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, Exclude<Exclude<R, ObjectStore>, BackupCatalog> | CopyDestination> =>
  Effect.flatMap(CopyDestination, ({ store, catalog }) =>
    self.pipe(Effect.provideService(ObjectStore, store), Effect.provideService(BackupCatalog, catalog))
  )
