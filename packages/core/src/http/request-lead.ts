import type { IncomingHttpHeaders } from 'node:http'
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '../semconv.ts'
import type { AttributeLead } from '../span.ts'
import { firstForwardedFor, firstHeaderToken, nodeAddress, parseForwarded, parseHostPort, type ForwardedInfo } from './forwarded.ts'

/** What a request's lead attributes are made of (ServerRequestState has these). */
export interface LeadInputs {
  readonly method: string
  readonly rawMethod: string
  readonly httpVersion: string
  readonly encrypted: boolean
  readonly headers: IncomingHttpHeaders
  readonly peer: { readonly address: string } | undefined
  readonly route: string | undefined
  readonly status: number | undefined
  readonly errorType: string | undefined
}

/** Stamps of RequestLead parts: each remade part gets a new one, never used before by any lead. */
let stamps = 0

/**
 * The attributes a server span starts with, which mostly repeat from one
 * request to the next, and what they were made from. One per
 * HttpServerTracing, remade in place (no allocation per request) whenever a
 * request's inputs differ from the last one's, in three parts:
 *
 * - the server's: method (and the original method when not a known one),
 *   scheme, protocol version, server address and port, made from the
 *   method, the connection's TLS, the HTTP version and the Host (or proxy)
 *   headers: the same across clients;
 * - the client's: client address, peer address and user agent, made from
 *   the connection's peer and the X-Forwarded-For, Forwarded and User-Agent
 *   headers: different clients differ here without remaking the server's;
 * - once the request has finished, its outcome: route, status code and
 *   error type (most requests in a row are the same route's 200s).
 *
 * Why: the protobuf encoder copies the attributes a span shares with the
 * previous one in one go, but has to compare each (some 90 instructions
 * apiece); a part that was not remade between two spans is the same, so
 * fillInto() tells it so (see AttributeLead) and it skips those compares,
 * and the header parsers run only for a part that changed.
 */
export class RequestLead {
  // Inputs of the server's part.
  method: string = ''
  rawMethod: string = ''
  httpVersion: string = ''
  encrypted: boolean = false
  forwardedProto: string | string[] | undefined = undefined
  forwardedHost: string | string[] | undefined = undefined
  host: string | undefined = undefined
  /** HTTP/2's :authority, read only when there is no Host header. */
  authority: string | string[] | undefined = undefined
  /** The Forwarded header (RFC 7239), an input of both parts: as each part was last made from it. */
  serverForwarded: string | undefined = undefined
  // Inputs of the client's part.
  clientForwarded: string | undefined = undefined
  forwardedFor: string | string[] | undefined = undefined
  peerAddress: string | undefined = undefined
  userAgent: string | undefined = undefined
  // What the server's part is (read by fillInto), and its stamp (0: never made, matches nothing).
  scheme: string = ''
  version: string = ''
  serverAddress: string | undefined = undefined
  serverPort: number | undefined = undefined
  serverStamp: number = 0
  // What the client's part is beyond its inputs (the peer's address, the user agent), and its stamp.
  clientAddress: string | undefined = undefined
  clientStamp: number = 0
  // The outcome's part is its inputs; its stamp.
  route: string | undefined = undefined
  status: number | undefined = undefined
  errorType: string | undefined = undefined
  outcomeStamp: number = 0

  /**
   * Writes the lead attributes of the request `r` into `out` as pairs from
   * index 0 (with `finished`, its outcome too), remaking a part first if
   * its inputs differ from the last request's; returns how many entries it
   * wrote. With `lead`, says which entries are the same as for the previous
   * requests with the same stamps.
   */
  fillInto(r: LeadInputs, out: Array<string | number>, finished: boolean, lead: AttributeLead | null): number {
    const headers = r.headers
    const forwarded = headers.forwarded
    const forwardedProto = headers['x-forwarded-proto']
    const forwardedHost = headers['x-forwarded-host']
    const host = headers.host
    const forwardedFor = headers['x-forwarded-for']
    const peerAddress = r.peer?.address
    const userAgent = headers['user-agent']
    // Each a compare by identity but for strings made per request (header
    // values, the HTTP version), compared by content: a few characters. Not
    // the method: it follows from the raw one (an HttpServerTracing's known
    // methods never change, and each has its own lead).
    const serverStale = r.rawMethod !== this.rawMethod || r.httpVersion !== this.httpVersion ||
      r.encrypted !== this.encrypted || forwarded !== this.serverForwarded || forwardedProto !== this.forwardedProto ||
      forwardedHost !== this.forwardedHost || host !== this.host || (host === undefined && headers[':authority'] !== this.authority)
    const clientStale = forwarded !== this.clientForwarded || forwardedFor !== this.forwardedFor || peerAddress !== this.peerAddress || userAgent !== this.userAgent
    if (serverStale || clientStale) {
      // Once for both parts: a Forwarded header names the proto and host as well as the client.
      const parsed = forwarded === undefined ? undefined : parseForwarded(forwarded)
      if (serverStale) this.#makeServer(r, forwarded, parsed, forwardedProto, forwardedHost, host)
      if (clientStale) this.#makeClient(forwarded, parsed, forwardedFor, peerAddress, userAgent)
    }
    // By index: `out` may be longer than what is written now. Constant keys
    // and the values from fields: copying pairs from arrays of their own
    // checked both arrays on every entry (twice the instructions).
    let n = 0
    out[n++] = ATTR_HTTP_REQUEST_METHOD; out[n++] = this.method
    out[n++] = ATTR_URL_SCHEME; out[n++] = this.scheme
    out[n++] = ATTR_NETWORK_PROTOCOL_VERSION; out[n++] = this.version
    if (this.method !== this.rawMethod) { out[n++] = ATTR_HTTP_REQUEST_METHOD_ORIGINAL; out[n++] = this.rawMethod }
    const serverAddress = this.serverAddress
    if (serverAddress !== undefined) {
      out[n++] = ATTR_SERVER_ADDRESS; out[n++] = serverAddress
      if (this.serverPort !== undefined) { out[n++] = ATTR_SERVER_PORT; out[n++] = this.serverPort }
    }
    const serverCount = n
    if (this.clientAddress !== undefined) { out[n++] = ATTR_CLIENT_ADDRESS; out[n++] = this.clientAddress }
    if (peerAddress !== undefined) { out[n++] = ATTR_NETWORK_PEER_ADDRESS; out[n++] = peerAddress }
    if (userAgent !== undefined) { out[n++] = ATTR_USER_AGENT_ORIGINAL; out[n++] = userAgent }
    const clientCount = n
    // Unfinished (a span the app ended itself), the part is empty: stamp 0.
    let outcomeStamp = 0
    if (finished) {
      const { route, status, errorType } = r
      if (route !== this.route || status !== this.status || errorType !== this.errorType) {
        this.route = route
        this.status = status
        this.errorType = errorType
        this.outcomeStamp = ++stamps
      }
      outcomeStamp = this.outcomeStamp
      if (route !== undefined) { out[n++] = ATTR_HTTP_ROUTE; out[n++] = route }
      if (status !== undefined) { out[n++] = ATTR_HTTP_RESPONSE_STATUS_CODE; out[n++] = status }
      if (errorType !== undefined) { out[n++] = ATTR_ERROR_TYPE; out[n++] = errorType }
    }
    if (lead !== null) {
      lead.key = this
      lead.stamp = this.serverStamp
      lead.count = serverCount
      lead.longStamp = this.clientStamp
      lead.longCount = clientCount
      lead.longestStamp = outcomeStamp
      lead.longestCount = n
    }
    return n
  }

  #makeServer(r: LeadInputs, forwarded: string | undefined, parsed: ForwardedInfo | undefined, forwardedProto: string | string[] | undefined,
    forwardedHost: string | string[] | undefined, host: string | undefined): void {
    const authority = host === undefined ? r.headers[':authority'] : undefined
    this.method = r.method
    this.rawMethod = r.rawMethod
    this.httpVersion = r.httpVersion
    this.encrypted = r.encrypted
    this.serverForwarded = forwarded
    this.forwardedProto = forwardedProto
    this.forwardedHost = forwardedHost
    this.host = host
    this.authority = authority
    this.serverStamp = ++stamps
    // Proxies first: Forwarded (RFC 7239), then the X-Forwarded-* family, then the connection.
    this.scheme = parsed?.proto ?? validScheme(firstHeaderToken(forwardedProto)) ?? (r.encrypted ? 'https' : 'http')
    // The conventions write "2" for HTTP/2, "1.1" for HTTP/1.1. Constants:
    // Node makes httpVersion a new string per request, and the encoder
    // compares the values of spans it was not told are the same.
    const version = r.httpVersion
    this.version = version === '1.1' ? '1.1' : version === '2.0' ? '2' : version
    // Each source in turn: a malformed X-Forwarded-Host falls back to Host.
    const hostPort = parseHostPort(parsed?.host) ?? parseHostPort(firstHeaderToken(forwardedHost)) ??
      parseHostPort(host ?? (authority as string | undefined))
    this.serverAddress = hostPort?.address
    this.serverPort = hostPort?.port
  }

  #makeClient(forwarded: string | undefined, parsed: ForwardedInfo | undefined, forwardedFor: string | string[] | undefined,
    peerAddress: string | undefined, userAgent: string | undefined): void {
    this.clientForwarded = forwarded
    this.forwardedFor = forwardedFor
    this.peerAddress = peerAddress
    this.userAgent = userAgent
    this.clientStamp = ++stamps
    const forwardedClient = parsed?.for ?? firstForwardedFor(forwardedFor)
    this.clientAddress = forwardedClient === undefined ? peerAddress : nodeAddress(forwardedClient)
  }
}

/** A URI scheme (RFC 3986 3.1), else undefined: junk in X-Forwarded-Proto never reaches url.scheme. */
function validScheme(value: string | undefined): string | undefined {
  if (value === undefined || value.length > 32) return undefined
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    const alpha = c >= 97 && c <= 122
    if (!(alpha || (i > 0 && ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46)))) return undefined
  }
  return value === '' ? undefined : value
}
