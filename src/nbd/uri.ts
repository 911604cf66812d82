/**
 * NBD URIs (doc/uri.md of NetworkBlockDevice/nbd): `nbd://host[:port]/[export]`
 * over TCP and `nbd+unix:///[export]?socket=PATH` over a Unix socket. The
 * TLS forms (`nbds://`, `nbds+unix://`) and other transports are refused
 * with a reason, as are query parameters this client does not understand
 * (the standard asks for that), so that a URI never silently means less
 * than it says.
 */
import { Either } from "effect"
import { isIPv6 } from "node:net"
import { clip } from "../format/untrusted.js"
import { MAX_STRING_LENGTH, NBD_DEFAULT_PORT } from "./protocol.js"

/** Where an NBD URI points: a TCP host and port or a Unix socket, and the export's name ("" for the default export). */
export type NbdAddress =
  | { readonly transport: "tcp"; readonly host: string; readonly port: number; readonly exportName: string }
  | { readonly transport: "unix"; readonly socket: string; readonly exportName: string }

/**
 * Whether `text` is meant as an NBD URI: its scheme is `nbd`, `nbds` or
 * one of theirs with a transport (`nbd+unix`, `nbds+unix`, `nbd+vsock`...),
 * so that a caller routes it to parseNbdUri and gets a refusal, not a file
 * named "nbds:...".
 */
export const isNbdUri = (text: string): boolean => /^nbds?(\+[a-z0-9.+-]*)?:/i.test(text)

const usage = "nbd://host[:port]/[export] or nbd+unix:///[export]?socket=PATH"

/** Percent-decoding; undefined for a malformed escape or bytes that are not UTF-8. */
const decode = (text: string): string | undefined => {
  try {
    return decodeURIComponent(text)
  } catch {
    return undefined
  }
}

/** `host[:port]` of a TCP URI, or why not. */
const parseAuthority = (authority: string): Either.Either<{ readonly host: string; readonly port: number }, string> => {
  if (authority.includes("@")) return Either.left("a user name in the URI is only for TLS authentication, which this client does not support")
  const bracketed = /^\[([^\]]*)\](?::(\d*))?$/.exec(authority)
  const plain = /^([^:[\]]*)(?::(\d*))?$/.exec(authority)
  const match = bracketed ?? plain
  if (match === null) return Either.left(`the host and port ${JSON.stringify(clip(authority))} are malformed`)
  const host = decode(match[1]!)
  if (host === undefined || host === "") return Either.left(`no host in the URI (expected ${usage})`)
  if (bracketed !== null && !isIPv6(host)) return Either.left(`${JSON.stringify(clip(host))} in brackets is not an IPv6 address`)
  if (bracketed === null && !/^[A-Za-z0-9\-._~!$&'()*+,;=]+$/.test(host)) return Either.left(`the host name ${JSON.stringify(clip(host))} has characters a host name cannot have`)
  const portText = match[2] ?? ""
  const port = portText === "" ? NBD_DEFAULT_PORT : Number(portText)
  if (!(port >= 1 && port <= 65535)) return Either.left(`port ${clip(portText)} is not between 1 and 65535`)
  return Either.right({ host, port })
}

/** The query's parameters, decoded (no '+' for space: that is HTML forms', not RFC 3986's). */
const parseQuery = (query: string): Either.Either<ReadonlyArray<readonly [string, string]>, string> => {
  const parameters: Array<readonly [string, string]> = []
  for (const part of query.split("&")) {
    if (part === "") continue
    const equals = part.indexOf("=")
    const key = decode(equals < 0 ? part : part.slice(0, equals))
    const value = decode(equals < 0 ? "" : part.slice(equals + 1))
    if (key === undefined || value === undefined) return Either.left(`the query parameter ${JSON.stringify(clip(part))} has a malformed %-escape`)
    parameters.push([key, value])
  }
  return Either.right(parameters)
}

/**
 * The address an NBD URI names, or why it is refused. The export name is
 * the path after its first `/`, percent-decoded (`nbd://h//disk` names
 * "/disk", `nbd://h` and `nbd://h/` the default export ""). The port
 * defaults to 10809; an IPv6 literal is written in brackets.
 */
export const parseNbdUri = (uri: string): Either.Either<NbdAddress, string> => {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase()
  if (scheme === undefined || !isNbdUri(uri)) return Either.left(`not an NBD URI (expected ${usage})`)
  if (scheme === "nbds" || scheme.startsWith("nbds+")) {
    return Either.left(`${scheme}:// asks for TLS, which this client does not support (use nbd:// or nbd+unix://)`)
  }
  if (scheme !== "nbd" && scheme !== "nbd+unix") return Either.left(`the transport of ${scheme}:// is not supported (use nbd:// or nbd+unix://)`)
  const parts = /^\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(#.*)?$/.exec(uri.slice(scheme.length + 1))
  if (parts === null) return Either.left(`expected ${scheme === "nbd" ? "nbd://host[:port]/[export]" : "nbd+unix:///[export]?socket=PATH"}`)
  const [, authority = "", path = "", query = "", fragment] = parts
  if (fragment !== undefined) return Either.left("a fragment (#...) has no meaning in an NBD URI; write # in an export name as %23")
  const exportName = decode(path.slice(1))
  if (exportName === undefined) return Either.left("the export name has a malformed %-escape")
  if (exportName.includes("\0")) return Either.left("the export name contains a NUL character")
  if (Buffer.byteLength(exportName, "utf8") > MAX_STRING_LENGTH) return Either.left(`the export name is longer than ${MAX_STRING_LENGTH} bytes`)
  const parameters = parseQuery(query)
  if (Either.isLeft(parameters)) return Either.left(parameters.left)
  let socket: string | undefined
  for (const [key, value] of parameters.right) {
    if (key.startsWith("tls-")) return Either.left(`the query parameter ${key} is for TLS, which this client does not support`)
    if (key !== "socket") return Either.left(`unknown query parameter ${JSON.stringify(clip(key))}`)
    if (scheme === "nbd") return Either.left("socket= is for nbd+unix:// URIs; nbd:// connects over TCP to its host")
    if (socket !== undefined) return Either.left("socket= is given more than once")
    socket = value
  }
  if (scheme === "nbd") {
    const address = parseAuthority(authority)
    return Either.map(address, ({ host, port }) => ({ transport: "tcp" as const, host, port, exportName }))
  }
  if (authority !== "") return Either.left("an nbd+unix:// URI has no host (write nbd+unix:///[export]?socket=PATH)")
  if (socket === undefined || socket === "") return Either.left("an nbd+unix:// URI needs ?socket=PATH")
  return Either.right({ transport: "unix", socket, exportName })
}
