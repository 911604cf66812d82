/**
 * TLS for the Swift and S3 stores, as Cinder configures it: a CA file
 * (`backup_swift_ca_cert_file`, `backup_s3_ca_cert_file`; here `ca-file=` in
 * the store URL, SWIFT_CA_FILE or AWS_CA_BUNDLE) added to Node's built-in
 * trusted roots, or verification turned off (`backup_swift_auth_insecure`,
 * `backup_s3_verify_ssl=False`; here `insecure=true`), which is said on
 * stderr once.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import Undici from "@effect/platform-node/Undici"
import type * as HttpClient from "@effect/platform/HttpClient"
import { Effect, Layer } from "effect"
import { readFileSync } from "node:fs"
import { rootCertificates } from "node:tls"

/** How the Swift/S3 HTTP client verifies the store's certificate. */
export interface TlsOptions {
  /** PEM file of CA certificates trusted besides Node's built-in roots */
  readonly caFile?: string
  /** no certificate verification at all */
  readonly insecure?: boolean
}

let warnedInsecure = false

/**
 * Node's HTTP client (undici) with these TLS settings; Left: why the CA file
 * cannot be used. Without settings, undici's shared dispatcher as before.
 */
export const layerHttpClientTls = (tls: TlsOptions): Effect.Effect<Layer.Layer<HttpClient.HttpClient>, string> =>
  Effect.gen(function* () {
    if (tls.caFile === undefined && tls.insecure !== true) return NodeHttpClient.layerUndici
    const ca =
      tls.caFile === undefined
        ? undefined
        : yield* Effect.try({
            try: () => readFileSync(tls.caFile!, "utf8"),
            catch: (e) => `cannot read the CA file ${tls.caFile}: ${(e as Error).message}`
          })
    if (ca !== undefined && !ca.includes("-----BEGIN CERTIFICATE-----")) {
      return yield* Effect.fail(`the CA file ${tls.caFile} holds no PEM certificate`)
    }
    if (tls.insecure === true && !warnedInsecure) {
      warnedInsecure = true
      process.stderr.write("warning: insecure=true: TLS certificates of the store are NOT verified\n")
    }
    const connect = {
      rejectUnauthorized: tls.insecure !== true,
      // A given CA adds to the built-in roots rather than replacing them.
      ...(ca === undefined ? {} : { ca: [...rootCertificates, ca] })
    }
    const dispatcher = Layer.scoped(
      NodeHttpClient.Dispatcher,
      Effect.acquireRelease(
        Effect.sync(() => new Undici.Agent({ connect })),
        (agent) => Effect.promise(() => agent.destroy())
      )
    )
    return NodeHttpClient.layerUndiciWithoutDispatcher.pipe(Layer.provide(dispatcher))
  })
