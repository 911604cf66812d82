/**
 * The one error of the NBD client: which URI, and what went wrong in words
 * a person can act on (the server's error names and messages included);
 * and those words for the handshake's failures.
 */
import { Data } from "effect"
import { clip } from "../format/untrusted.js"
import { NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_SHUTDOWN, NBD_REP_ERR_TLS_REQD, NBD_REP_ERR_UNKNOWN, NBD_REP_ERR_UNSUP, optionName, optionReplyErrorName } from "./protocol.js"
import type { NbdAddress } from "./uri.js"

/** Connecting to, negotiating with or reading from an NBD server failed, or the server broke the protocol. */
export class NbdError extends Data.TaggedError("NbdError")<{
  /** the URI as the user gave it */
  readonly uri: string
  readonly reason: string
  /** the underlying error (a socket's), when there is one */
  readonly cause?: unknown
}> {
  override get message() {
    return `NBD ${this.uri}: ${this.reason}`
  }
}

/** Why connecting failed, from the socket's error. */
export const connectFailure = (address: NbdAddress, code: string): string => {
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused (ECONNREFUSED)"
    case "ENOENT":
      return `no socket at ${address.transport === "unix" ? address.socket : "the path"} (ENOENT)`
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `the host ${address.transport === "tcp" ? address.host : ""} was not found (${code})`
    case "EACCES":
      return "permission denied (EACCES)"
    default:
      return `cannot connect (${code})`
  }
}

/** A refused option, in words. */
export const refusal = (option: number, exportName: string, type: number, message: string): string => {
  const says = message === "" ? "" : ` (the server says ${JSON.stringify(clip(message))})`
  const name = JSON.stringify(clip(exportName))
  if (type === NBD_REP_ERR_UNSUP) return `${option === NBD_OPT_STRUCTURED_REPLY ? "the server does not support structured replies" : `the server does not support ${optionName(option)}`}${says}`
  if (type === NBD_REP_ERR_UNKNOWN) return `the server has no export named ${name}${says}`
  if (type === NBD_REP_ERR_TLS_REQD) return `the server requires TLS, which this client does not support${says}`
  if (type === NBD_REP_ERR_SHUTDOWN) return `the server is shutting down (NBD_REP_ERR_SHUTDOWN)${says}`
  return `the server refused ${optionName(option)} for the export ${name} with ${optionReplyErrorName(type)}${says}`
}
