/**
 * Swift and S3 settings through effect's `Config` (environment variables by
 * default), and store URLs (`--store swift+http://…`, `--store s3://…`)
 * turned into the same settings. URLs never carry secrets: keys, passwords
 * and tokens come only from the environment, as `Redacted` values.
 *
 * Swift (auth picked by SWIFT_AUTH, else by what is set: a token, then
 * SWIFT_AUTH_URL, then OS_AUTH_URL):
 *   v1     SWIFT_AUTH_URL, SWIFT_USER, SWIFT_KEY
 *   v3     OS_AUTH_URL, OS_USERNAME | OS_USER_ID, OS_PASSWORD,
 *          OS_PROJECT_NAME | OS_PROJECT_ID, OS_USER_DOMAIN_NAME | OS_USER_DOMAIN_ID,
 *          OS_PROJECT_DOMAIN_NAME | OS_PROJECT_DOMAIN_ID, OS_REGION_NAME, OS_INTERFACE
 *   token  SWIFT_STORAGE_URL (or OS_STORAGE_URL), SWIFT_AUTH_TOKEN (or OS_AUTH_TOKEN)
 *   SWIFT_CONTAINER, SWIFT_CREATE_CONTAINER, SWIFT_STORAGE_POLICY, SWIFT_OBJECT_SIZE,
 *   SWIFT_BLOCK_SIZE, SWIFT_AVAILABILITY_ZONE, SWIFT_TIMEOUT (s), SWIFT_CONCURRENCY
 * S3:
 *   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION | AWS_DEFAULT_REGION,
 *   S3_BUCKET, S3_ENDPOINT_URL, S3_PATH_STYLE, S3_UNSIGNED_PAYLOAD, S3_SSE_CUSTOMER_KEY,
 *   S3_SSE_CUSTOMER_ALGORITHM, S3_CREATE_BUCKET, S3_OBJECT_SIZE, S3_BLOCK_SIZE,
 *   S3_AVAILABILITY_ZONE, S3_TIMEOUT (s), S3_CONCURRENCY
 * TLS (src/store/tls.ts): SWIFT_CA_FILE, SWIFT_INSECURE; AWS_CA_BUNDLE, S3_INSECURE
 *   (`ca-file=` and `insecure=` in a store URL)
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import { Config, ConfigError, ConfigProvider, Duration, Effect, Either, Layer, Option } from "effect"
import type { ObjectStore } from "./ObjectStore.js"
import { layerS3, type S3StoreOptions } from "./s3.js"
import { layerSwift, type SwiftAuth, type SwiftStoreOptions } from "./swift.js"
import type { TlsOptions } from "./tls.js"

const str = (name: string) => Config.option(Config.nonEmptyString(name))
const either = (first: string, second: string) =>
  Config.option(Config.orElse(Config.nonEmptyString(first), () => Config.nonEmptyString(second)))
const secret = (name: string) => Config.option(Config.redacted(name))
const int = (name: string) => Config.option(Config.integer(name))
const bool = (name: string) => Config.option(Config.boolean(name))
const seconds = (name: string) => Config.option(Config.number(name))

/** Only the fields that are set (exactOptionalPropertyTypes). */
const defined = <T extends Record<string, unknown>>(fields: { [K in keyof T]: Option.Option<T[K]> }): Partial<T> => {
  const out: Partial<T> = {}
  for (const key in fields) {
    const value = fields[key]
    if (Option.isSome(value)) out[key] = value.value
  }
  return out
}

const missing = (name: string, why: string) => ConfigError.MissingData([name], why)

/** The Swift store's settings from Config (the environment by default): SWIFT_* and OS_* variables. */
export const swiftConfig: Config.Config<SwiftStoreOptions> = Config.all({
  auth: Config.option(Config.literal("v1", "v3", "token")("SWIFT_AUTH")),
  authUrl: str("SWIFT_AUTH_URL"),
  user: str("SWIFT_USER"),
  key: secret("SWIFT_KEY"),
  storageUrl: either("SWIFT_STORAGE_URL", "OS_STORAGE_URL"),
  token: Config.option(Config.orElse(Config.redacted("SWIFT_AUTH_TOKEN"), () => Config.redacted("OS_AUTH_TOKEN"))),
  osAuthUrl: str("OS_AUTH_URL"),
  username: str("OS_USERNAME"),
  userId: str("OS_USER_ID"),
  password: secret("OS_PASSWORD"),
  projectName: either("OS_PROJECT_NAME", "OS_TENANT_NAME"),
  projectId: either("OS_PROJECT_ID", "OS_TENANT_ID"),
  userDomainName: str("OS_USER_DOMAIN_NAME"),
  userDomainId: str("OS_USER_DOMAIN_ID"),
  projectDomainName: str("OS_PROJECT_DOMAIN_NAME"),
  projectDomainId: str("OS_PROJECT_DOMAIN_ID"),
  region: str("OS_REGION_NAME"),
  interface: Config.option(Config.literal("public", "internal", "admin")("OS_INTERFACE")),
  container: str("SWIFT_CONTAINER"),
  createContainers: bool("SWIFT_CREATE_CONTAINER"),
  storagePolicy: str("SWIFT_STORAGE_POLICY"),
  chunkSize: int("SWIFT_OBJECT_SIZE"),
  shaBlockSize: int("SWIFT_BLOCK_SIZE"),
  availabilityZone: str("SWIFT_AVAILABILITY_ZONE"),
  timeout: seconds("SWIFT_TIMEOUT"),
  concurrency: int("SWIFT_CONCURRENCY")
}).pipe(
  Config.mapOrFail((c): Either.Either<SwiftStoreOptions, ConfigError.ConfigError> => {
    const kind = Option.getOrElse(c.auth, () =>
      Option.isSome(c.token) ? "token" : Option.isSome(c.authUrl) ? "v1" : Option.isSome(c.osAuthUrl) ? "v3" : "none"
    )
    let auth: SwiftAuth
    if (kind === "v1") {
      if (Option.isNone(c.authUrl)) return Either.left(missing("SWIFT_AUTH_URL", "auth v1 needs SWIFT_AUTH_URL"))
      if (Option.isNone(c.user)) return Either.left(missing("SWIFT_USER", "auth v1 needs SWIFT_USER (account:user)"))
      if (Option.isNone(c.key)) return Either.left(missing("SWIFT_KEY", "auth v1 needs SWIFT_KEY"))
      auth = { type: "v1", authUrl: c.authUrl.value, user: c.user.value, key: c.key.value }
    } else if (kind === "v3") {
      if (Option.isNone(c.osAuthUrl)) return Either.left(missing("OS_AUTH_URL", "Keystone auth needs OS_AUTH_URL"))
      if (Option.isNone(c.password)) return Either.left(missing("OS_PASSWORD", "Keystone auth needs OS_PASSWORD"))
      if (Option.isNone(c.username) && Option.isNone(c.userId)) return Either.left(missing("OS_USERNAME", "Keystone auth needs OS_USERNAME or OS_USER_ID"))
      if (Option.isNone(c.projectName) && Option.isNone(c.projectId)) {
        return Either.left(missing("OS_PROJECT_NAME", "Keystone auth needs OS_PROJECT_NAME or OS_PROJECT_ID (a project-scoped token has the catalog)"))
      }
      auth = {
        type: "keystone",
        authUrl: c.osAuthUrl.value,
        password: c.password.value,
        ...defined({
          username: c.username,
          userId: c.userId,
          userDomainName: c.userDomainName,
          userDomainId: c.userDomainId,
          projectName: c.projectName,
          projectId: c.projectId,
          projectDomainName: c.projectDomainName,
          projectDomainId: c.projectDomainId,
          region: c.region,
          interface: c.interface
        })
      }
    } else if (kind === "token") {
      if (Option.isNone(c.storageUrl)) return Either.left(missing("SWIFT_STORAGE_URL", "token auth needs SWIFT_STORAGE_URL"))
      if (Option.isNone(c.token)) return Either.left(missing("SWIFT_AUTH_TOKEN", "token auth needs SWIFT_AUTH_TOKEN"))
      auth = { type: "token", storageUrl: c.storageUrl.value, token: c.token.value }
    } else {
      return Either.left(missing("SWIFT_AUTH_URL", "set SWIFT_AUTH_URL (auth v1), OS_AUTH_URL (Keystone v3) or SWIFT_STORAGE_URL + SWIFT_AUTH_TOKEN"))
    }
    return Either.right({
      auth,
      ...defined({
        container: c.container,
        createContainers: c.createContainers,
        storagePolicy: c.storagePolicy,
        chunkSize: c.chunkSize,
        shaBlockSize: c.shaBlockSize,
        availabilityZone: c.availabilityZone,
        concurrency: c.concurrency
      }),
      ...(Option.isSome(c.timeout) ? { timeout: Duration.seconds(c.timeout.value) } : {})
    })
  })
)

/** The S3 store's settings from Config (the environment by default): AWS_* and S3_* variables. */
export const s3Config: Config.Config<S3StoreOptions> = Config.all({
  accessKeyId: Config.nonEmptyString("AWS_ACCESS_KEY_ID"),
  secretAccessKey: Config.redacted("AWS_SECRET_ACCESS_KEY"),
  sessionToken: secret("AWS_SESSION_TOKEN"),
  region: either("AWS_REGION", "AWS_DEFAULT_REGION"),
  bucket: str("S3_BUCKET"),
  endpoint: str("S3_ENDPOINT_URL"),
  pathStyle: bool("S3_PATH_STYLE"),
  unsignedPayload: bool("S3_UNSIGNED_PAYLOAD"),
  sseCustomerKey: secret("S3_SSE_CUSTOMER_KEY"),
  sseCustomerAlgorithm: str("S3_SSE_CUSTOMER_ALGORITHM"),
  createContainers: bool("S3_CREATE_BUCKET"),
  chunkSize: int("S3_OBJECT_SIZE"),
  shaBlockSize: int("S3_BLOCK_SIZE"),
  availabilityZone: str("S3_AVAILABILITY_ZONE"),
  timeout: seconds("S3_TIMEOUT"),
  concurrency: int("S3_CONCURRENCY")
}).pipe(
  Config.map(({ accessKeyId, secretAccessKey, timeout, ...rest }): S3StoreOptions => ({
    accessKeyId,
    secretAccessKey,
    ...defined(rest),
    ...(Option.isSome(timeout) ? { timeout: Duration.seconds(timeout.value) } : {})
  }))
)

/** The Swift layer configured by `config` (default `swiftConfig`: the environment, unless another ConfigProvider is set). */
export const layerSwiftConfig = (
  config: Config.Config<SwiftStoreOptions> = swiftConfig
): Layer.Layer<ObjectStore, ConfigError.ConfigError, HttpClient.HttpClient> => Layer.unwrapEffect(Effect.map(config, layerSwift))

/** The S3 layer configured by `config` (default `s3Config`). */
export const layerS3Config = (
  config: Config.Config<S3StoreOptions> = s3Config
): Layer.Layer<ObjectStore, ConfigError.ConfigError, HttpClient.HttpClient> => Layer.unwrapEffect(Effect.map(config, layerS3))

// ---- store URLs -------------------------------------------------------------------

const SWIFT_PARAMS: Record<string, string> = {
  container: "SWIFT_CONTAINER",
  "create-container": "SWIFT_CREATE_CONTAINER",
  "storage-policy": "SWIFT_STORAGE_POLICY",
  "object-size": "SWIFT_OBJECT_SIZE",
  "block-size": "SWIFT_BLOCK_SIZE",
  az: "SWIFT_AVAILABILITY_ZONE",
  timeout: "SWIFT_TIMEOUT",
  concurrency: "SWIFT_CONCURRENCY",
  region: "OS_REGION_NAME",
  interface: "OS_INTERFACE",
  project: "OS_PROJECT_NAME",
  "project-id": "OS_PROJECT_ID",
  "project-domain": "OS_PROJECT_DOMAIN_NAME",
  "user-domain": "OS_USER_DOMAIN_NAME",
  "ca-file": "SWIFT_CA_FILE",
  insecure: "SWIFT_INSECURE"
}
const S3_PARAMS: Record<string, string> = {
  endpoint: "S3_ENDPOINT_URL",
  region: "AWS_REGION",
  "path-style": "S3_PATH_STYLE",
  "unsigned-payload": "S3_UNSIGNED_PAYLOAD",
  "sse-algorithm": "S3_SSE_CUSTOMER_ALGORITHM",
  "create-bucket": "S3_CREATE_BUCKET",
  "object-size": "S3_OBJECT_SIZE",
  "block-size": "S3_BLOCK_SIZE",
  az: "S3_AVAILABILITY_ZONE",
  timeout: "S3_TIMEOUT",
  concurrency: "S3_CONCURRENCY",
  "ca-file": "AWS_CA_BUNDLE",
  insecure: "S3_INSECURE"
}

/** A parsed store URL (posix:, swift://, swift+http://, s3://) and the settings it carries. */
export interface StoreUrl {
  readonly kind: "swift" | "s3"
  /** settings named by the URL; they win over the environment */
  readonly settings: ReadonlyMap<string, string>
}

/**
 * `swift` / `s3` alone: everything from the environment.
 * `swift://host[:port]/path` (https), `swift+http://…`, `swift+https://…`:
 *   the auth URL (auth v1; Keystone v3 when the path ends in /v3), or with
 *   `?auth=token` the storage URL; `?auth=v1|v3|token` says which.
 * `s3://bucket?endpoint=http://127.0.0.1:8080&region=us-east-1&path-style=true`.
 * Other query parameters: see SWIFT_PARAMS / S3_PARAMS. Left: why the URL is refused.
 */
export const parseStoreUrl = (url: string): Either.Either<StoreUrl, string> | undefined => {
  if (url === "swift" || url === "swift:") return Either.right({ kind: "swift", settings: new Map() })
  if (url === "s3" || url === "s3:") return Either.right({ kind: "s3", settings: new Map() })
  const scheme = /^([a-z0-9+]+):\/\//.exec(url)?.[1]
  if (scheme === undefined || !["swift", "swift+http", "swift+https", "s3"].includes(scheme)) return undefined
  let parsed: URL
  try {
    parsed = new URL(url.replace(/^[a-z0-9+]+:/, "http:"))
  } catch {
    return Either.left(`cannot parse ${JSON.stringify(url)} as a URL`)
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return Either.left("store URLs carry no credentials: use SWIFT_USER/SWIFT_KEY, OS_USERNAME/OS_PASSWORD or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
  }
  const settings = new Map<string, string>()
  const known = scheme === "s3" ? S3_PARAMS : SWIFT_PARAMS
  let auth: string | undefined
  for (const [name, value] of parsed.searchParams) {
    if (scheme !== "s3" && name === "auth") auth = value
    else if (known[name] !== undefined) settings.set(known[name]!, value)
    else return Either.left(`unknown parameter ${JSON.stringify(name)} in the store URL; known: ${[...(scheme === "s3" ? [] : ["auth"]), ...Object.keys(known)].join(", ")}`)
  }
  if (scheme === "s3") {
    if (parsed.host === "") return Either.left("s3://<bucket>: the bucket is missing")
    // The bucket as typed: URL parsing would lower-case it as a host name.
    settings.set("S3_BUCKET", decodeURIComponent(/^s3:\/\/([^/?#]*)/.exec(url)?.[1] ?? parsed.host))
    return Either.right({ kind: "s3", settings })
  }
  const protocol = scheme === "swift+http" ? "http:" : "https:"
  const target = `${protocol}//${parsed.host}${parsed.pathname}`
  const kind = auth ?? (/\/v3\/?$/.test(parsed.pathname) ? "v3" : "v1")
  if (kind === "v1") settings.set("SWIFT_AUTH_URL", target)
  else if (kind === "v3" || kind === "keystone") settings.set("OS_AUTH_URL", target)
  else if (kind === "token") settings.set("SWIFT_STORAGE_URL", target)
  else return Either.left(`auth=${kind}: expected v1, v3 or token`)
  settings.set("SWIFT_AUTH", kind === "keystone" ? "v3" : kind)
  return Either.right({ kind: "swift", settings })
}

/**
 * A ConfigError in plain words: the settings that are missing, then what is
 * wrong with the others. Effect's own text repeats each missing name once per
 * provider tried ("(Missing data at X …) or (Missing data at X …)").
 */
export const describeConfigError = (error: ConfigError.ConfigError): string => {
  const missingNames = new Set<string>()
  const badNames = new Set<string>()
  const other = new Set<string>()
  const visit = (e: ConfigError.ConfigError): void => {
    switch (e._op) {
      case "And":
      case "Or":
        visit(e.left)
        visit(e.right)
        return
      case "MissingData": {
        const name = e.path.join(".")
        // Effect's generic texts say only that the name is missing; ours say why.
        if (/^Expected .* to exist|^<redacted>$/.test(e.message)) missingNames.add(name)
        else other.add(e.message)
        return
      }
      default:
        badNames.add(e.path.join("."))
        other.add(`${e.path.join(".")} is not valid: ${e.message.replace(/^Expected/, "expected")}`)
    }
  }
  visit(error)
  // A value that is set but bad is missing only from the providers tried before it.
  const names = [...missingNames].filter((name) => !badNames.has(name))
  const missingText = names.length === 0
    ? []
    : [`${names.length === 1 ? "the setting" : "the settings"} ${names.slice(0, -1).join(", ")}${names.length > 1 ? " and " : ""}${names.at(-1)} ${names.length === 1 ? "is" : "are"} not set (environment variables)`]
  return [...missingText, ...other].join("; ")
}

/** A store URL's settings first, then the environment. */
const providerFor = (settings: ReadonlyMap<string, string>) =>
  ConfigProvider.orElse(ConfigProvider.fromMap(new Map(settings)), () => ConfigProvider.fromEnv())

/** Reads the configuration of a parsed store URL (its settings first, then the environment) into a layer. */
export const storeUrlLayer = ({
  kind,
  settings
}: StoreUrl): Effect.Effect<Layer.Layer<ObjectStore, never, HttpClient.HttpClient>, ConfigError.ConfigError> =>
  Effect.withConfigProvider(
    kind === "swift" ? Effect.map(swiftConfig, layerSwift) : Effect.map(s3Config, layerS3),
    providerFor(settings)
  )

/** TLS settings: SWIFT_CA_FILE, SWIFT_INSECURE (Swift and Keystone); AWS_CA_BUNDLE, S3_INSECURE (S3). */
export const tlsConfig = (kind: StoreUrl["kind"]): Config.Config<TlsOptions> =>
  Config.all({
    caFile: str(kind === "swift" ? "SWIFT_CA_FILE" : "AWS_CA_BUNDLE"),
    insecure: bool(kind === "swift" ? "SWIFT_INSECURE" : "S3_INSECURE")
  }).pipe(Config.map((fields) => defined<TlsOptions & Record<string, unknown>>(fields)))

/** The TLS settings of a parsed store URL (its settings first, then the environment). */
export const storeUrlTls = ({ kind, settings }: StoreUrl): Effect.Effect<TlsOptions, ConfigError.ConfigError> =>
  Effect.withConfigProvider(tlsConfig(kind), providerFor(settings))

/** The layer for a parsed store URL; fails with the ConfigError when a setting is missing or malformed. */
export const layerFromStoreUrl = (url: StoreUrl): Layer.Layer<ObjectStore, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.unwrapEffect(storeUrlLayer(url))
