/**
 * NBD URIs: the TCP and Unix forms of doc/uri.md parse to an address and an
 * export name; TLS, other transports and anything malformed are refused
 * with a reason, never guessed at.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { isNbdUri, parseNbdUri } from "../../src/nbd/uri.js"

const parsed = (uri: string) => Either.getOrThrowWith(parseNbdUri(uri), (reason) => new Error(`${uri}: ${reason}`))
const refusal = (uri: string) => Either.getOrThrowWith(Either.flip(parseNbdUri(uri)), () => new Error(`${uri} was accepted`))

describe("parseNbdUri", () => {
  it("TCP, with and without a port, IPv4, IPv6 and host names", () => {
    expect(parsed("nbd://example.com/disk")).toEqual({ transport: "tcp", host: "example.com", port: 10809, exportName: "disk" })
    expect(parsed("nbd://127.0.0.1:10900/disk")).toEqual({ transport: "tcp", host: "127.0.0.1", port: 10900, exportName: "disk" })
    expect(parsed("nbd://[::1]:1234/")).toEqual({ transport: "tcp", host: "::1", port: 1234, exportName: "" })
    expect(parsed("nbd://[fe80::1%25eth0]/x")).toMatchObject({ host: "fe80::1%eth0", port: 10809 })
    expect(parsed("NBD://Example.com:/")).toMatchObject({ host: "Example.com", port: 10809 })
  })

  it("the export name is the percent-decoded path after its first slash (the standard's table)", () => {
    expect(parsed("nbd://example.com/").exportName).toBe("")
    expect(parsed("nbd://example.com").exportName).toBe("")
    expect(parsed("nbd://example.com//disk").exportName).toBe("/disk")
    expect(parsed("nbd://example.com/hello%20world").exportName).toBe("hello world")
    expect(parsed("nbd://h/a/../b%2F%23%3F%C3%A9").exportName).toBe("a/../b/#?é")
    expect(parsed("nbd://h/a+b").exportName).toBe("a+b")
  })

  it("Unix sockets: ?socket=PATH, decoded, '+' kept", () => {
    expect(parsed("nbd+unix:///disk?socket=/run/nbd.sock")).toEqual({ transport: "unix", socket: "/run/nbd.sock", exportName: "disk" })
    expect(parsed("nbd+unix:///?socket=relative%20dir/a+b.sock")).toEqual({ transport: "unix", socket: "relative dir/a+b.sock", exportName: "" })
    expect(parsed("nbd+unix://?socket=%00/abstract")).toMatchObject({ socket: "\0/abstract", exportName: "" })
  })

  it("TLS forms, other transports and other schemes are refused with a reason", () => {
    expect(refusal("nbds://example.com/disk")).toBe("nbds:// asks for TLS, which this client does not support (use nbd:// or nbd+unix://)")
    expect(refusal("nbds+unix:///disk?socket=/s")).toMatch(/^nbds\+unix:\/\/ asks for TLS/)
    expect(refusal("nbd+vsock://2:10809/")).toBe("the transport of nbd+vsock:// is not supported (use nbd:// or nbd+unix://)")
    expect(refusal("http://example.com/")).toMatch(/^not an NBD URI/)
    expect(refusal("/dev/sda")).toMatch(/^not an NBD URI/)
  })

  it("malformed or incomplete URIs are refused, each with its reason", () => {
    const cases: ReadonlyArray<readonly [string, RegExp]> = [
      ["nbd+unix:///disk", /needs \?socket=PATH/],
      ["nbd+unix:///disk?socket=", /needs \?socket=PATH/],
      ["nbd+unix://host/disk?socket=/s", /has no host/],
      ["nbd://host/disk?socket=/s", /socket= is for nbd\+unix/],
      ["nbd+unix:///?socket=/a&socket=/b", /more than once/],
      ["nbd://host/?tls-type=x509", /tls-type is for TLS/],
      ["nbd://host/?foo=1", /unknown query parameter "foo"/],
      ["nbd://host/disk#part", /fragment/],
      ["nbd://host/bad%zz", /malformed %-escape/],
      ["nbd://host/nul%00", /NUL/],
      ["nbd://host:99999/", /port 99999/],
      ["nbd://host:0/", /port 0/],
      ["nbd://host:12ab/", /malformed/],
      ["nbd:///disk", /no host/],
      ["nbd://user@host/", /user name/],
      ["nbd://[not-ipv6]/", /not an IPv6 address/],
      ["nbd://exa mple/", /characters a host name cannot have/],
      ["nbd:host/disk", /expected nbd:\/\/host/],
      [`nbd://h/${"x".repeat(4097)}`, /longer than 4096 bytes/]
    ]
    for (const [uri, reason] of cases) expect([uri, refusal(uri)]).toEqual([uri, expect.stringMatching(reason)])
  })
})

describe("isNbdUri", () => {
  it("routes every nbd scheme here, TLS and unknown transports included, and nothing else", () => {
    for (const uri of ["nbd://h/", "nbds://h/", "nbd+unix:///?socket=s", "nbds+unix:///", "NBD+VSOCK://1", "nbd:x"]) expect([uri, isNbdUri(uri)]).toEqual([uri, true])
    for (const text of ["/dev/nbd0", "nbd0.img", "./nbd:1", "http://h/", "nbdx://h/", ""]) expect([text, isNbdUri(text)]).toEqual([text, false])
  })
})
