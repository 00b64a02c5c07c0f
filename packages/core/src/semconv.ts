/**
 * The attribute names Spanline emits, from the stable OpenTelemetry semantic
 * conventions (https://opentelemetry.io/docs/specs/semconv/http/http-spans/).
 * Copied as constants rather than depended on, as OpenTelemetry's own SDK
 * does for the few names it needs.
 */
export const ATTR_HTTP_REQUEST_METHOD = 'http.request.method'
export const ATTR_HTTP_REQUEST_METHOD_ORIGINAL = 'http.request.method_original'
export const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code'
export const ATTR_HTTP_ROUTE = 'http.route'
export const ATTR_URL_FULL = 'url.full'
export const ATTR_URL_PATH = 'url.path'
export const ATTR_URL_QUERY = 'url.query'
export const ATTR_URL_SCHEME = 'url.scheme'
export const ATTR_SERVER_ADDRESS = 'server.address'
export const ATTR_SERVER_PORT = 'server.port'
export const ATTR_CLIENT_ADDRESS = 'client.address'
export const ATTR_NETWORK_PEER_ADDRESS = 'network.peer.address'
export const ATTR_NETWORK_PEER_PORT = 'network.peer.port'
export const ATTR_NETWORK_PROTOCOL_VERSION = 'network.protocol.version'
export const ATTR_USER_AGENT_ORIGINAL = 'user_agent.original'
export const ATTR_ERROR_TYPE = 'error.type'
/** Prefixes of captured headers: `http.request.header.<lower-case name>` (string[] values). */
export const ATTR_HTTP_REQUEST_HEADER_PREFIX = 'http.request.header.'
export const ATTR_HTTP_RESPONSE_HEADER_PREFIX = 'http.response.header.'

/** Methods known by default: RFC 9110's and PATCH (RFC 5789); others are reported as _OTHER. */
export const DEFAULT_KNOWN_METHODS: readonly string[] = ['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']
