/**
 * Telling a refused TLS certificate from other transport errors. Apart from
 * tls.ts so that the store modules need not load Node's HTTP client (undici,
 * ~40 ms of every start) for a command that never makes a request.
 */

/** Codes Node gives a TLS handshake whose certificate is refused (or that is not TLS at all). */
const CERTIFICATE_CODE = /CERT|UNABLE_TO_|ERR_TLS_|ERR_SSL_|SSL_ROUTINES/

/** The certificate problem in a transport error's cause chain (its code and text), if that is what failed. */
export const certificateProblem = (cause: unknown): string | undefined => {
  let current: unknown = cause
  for (let depth = 0; depth < 6 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string" && CERTIFICATE_CODE.test(code)) return `${code}: ${current.message}`
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}
