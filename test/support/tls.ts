/**
 * A real TLS endpoint for the store tests: a private CA and a server
 * certificate for 127.0.0.1/localhost made with openssl in a temporary
 * directory, and stunnel4 terminating TLS in front of the loopback Swift
 * proxy (Swift and S3 APIs) and Keystone. Stopped by its PID.
 */
import { execFileSync, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const STUNNEL = "/usr/bin/stunnel4"
export const haveTlsTools = existsSync(STUNNEL) && existsSync("/usr/bin/openssl")

export interface TlsFront {
  readonly dir: string
  /** PEM of the private CA that signed the server certificate */
  readonly caFile: string
  /** a CA that signed nothing here: trusting it does not help */
  readonly otherCaFile: string
  /** https://127.0.0.1:PORT for each backend `host:port` given */
  readonly urls: ReadonlyMap<string, string>
  /** the first backend again, with a certificate from the same CA for another host name */
  readonly wrongNameUrl: string
}

const openssl = (dir: string, ...args: Array<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })

const makeCa = (dir: string, name: string) =>
  openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout", `${name}.key`, "-out", `${name}.pem`)

const waitForPort = (port: number, deadline: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const socket = new Socket()
    socket.once("connect", () => (socket.destroy(), resolve()))
    socket.once("error", () => {
      socket.destroy()
      if (Date.now() > deadline) reject(new Error(`stunnel did not listen on ${port}`))
      else setTimeout(() => waitForPort(port, deadline).then(resolve, reject), 100)
    })
    socket.connect(port, "127.0.0.1")
  })

export interface Started {
  /** resolves once it listens */
  readonly ready: Promise<void>
  readonly stop: () => void
}

const stopping = (pid: number | undefined, dir: string) => () => {
  try {
    if (pid !== undefined) process.kill(pid, "SIGTERM")
  } catch {
    // already gone
  }
  rmSync(dir, { recursive: true, force: true })
}

/**
 * stunnel on `firstPort`, `firstPort + 1`, … in front of each `backends`
 * entry (host:port), with a certificate from a fresh private CA. Started at
 * once (a test file's conformance suite needs its URL when it registers).
 */
export const startTlsFront = (backends: ReadonlyArray<string>, firstPort: number): TlsFront & Started => {
  const dir = mkdtempSync(join(tmpdir(), "cb-tls-"))
  makeCa(dir, "ca")
  makeCa(dir, "other-ca")
  openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
  openssl(dir, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
    "-days", "2", "-extfile", "san.ext", "-out", "server.pem")
  openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=elsewhere.example", "-keyout", "wrong.key", "-out", "wrong.csr")
  writeFileSync(join(dir, "wrong.ext"), "subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth\n")
  openssl(dir, "x509", "-req", "-in", "wrong.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
    "-days", "2", "-extfile", "wrong.ext", "-out", "wrong.pem")
  const urls = new Map<string, string>()
  const services = backends.map((backend, i) => {
    urls.set(backend, `https://127.0.0.1:${firstPort + i}`)
    return `[s${i}]\naccept = 127.0.0.1:${firstPort + i}\nconnect = ${backend}\n`
  })
  const wrongPort = firstPort + backends.length
  services.push(`[wrong-name]\naccept = 127.0.0.1:${wrongPort}\nconnect = ${backends[0]}\ncert = ${join(dir, "wrong.pem")}\nkey = ${join(dir, "wrong.key")}\n`)
  const conf = join(dir, "stunnel.conf")
  writeFileSync(conf, [`foreground = yes`, `pid =`, `debug = 5`, `output = ${join(dir, "stunnel.log")}`,
    `cert = ${join(dir, "server.pem")}`, `key = ${join(dir, "server.key")}`, ...services].join("\n") + "\n")
  const child = spawn(STUNNEL, [conf], { stdio: "ignore" })
  const deadline = Date.now() + 10_000
  const ready = Promise.all([...backends, "wrong"].map((_, i) => waitForPort(firstPort + i, deadline))).then(() => {})
  const wrongNameUrl = `https://127.0.0.1:${wrongPort}`
  return { dir, caFile: join(dir, "ca.pem"), otherCaFile: join(dir, "other-ca.pem"), urls, wrongNameUrl, ready, stop: stopping(child.pid, dir) }
}

/** The stunnel log, for a failing test's message. */
export const stunnelLog = (front: TlsFront) => {
  try {
    return readFileSync(join(front.dir, "stunnel.log"), "utf8")
  } catch {
    return ""
  }
}

/** Where scripts/swift-loopback.sh keeps its configuration. */
const LOOPBACK_ETC = join(process.env.SWIFT_LOOPBACK_DIR ?? "/tmp/chunked-backup-swift", "etc")

/**
 * A second tempauth proxy over the shared loopback servers, configured as an
 * operator puts one behind a TLS terminator: `storage_url_scheme = https` in
 * [filter:tempauth], so the X-Storage-Url it hands out is https:// on the
 * terminator's host and port (the Host header stunnel passes on). The shared
 * proxy is not touched. Stopped by its PID.
 */
export const startHttpsSchemeProxy = (port: number): Started & { readonly backend: string } => {
  const dir = mkdtempSync(join(tmpdir(), "cb-proxy-"))
  const conf = readFileSync(join(LOOPBACK_ETC, "proxy-server.conf"), "utf8")
    .replace(/^bind_port = .*$/m, `bind_port = ${port}`)
    .replace(/^workers = .*$/m, "workers = 1")
    .replace(/^\[filter:tempauth\]$/m, "[filter:tempauth]\nstorage_url_scheme = https")
  const file = join(dir, "proxy-server.conf")
  writeFileSync(file, conf)
  const child = spawn("swift-proxy-server", [file], { stdio: "ignore" })
  return { backend: `127.0.0.1:${port}`, ready: waitForPort(port, Date.now() + 30_000), stop: stopping(child.pid, dir) }
}
