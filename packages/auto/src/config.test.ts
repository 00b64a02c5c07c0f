import { INSTRUMENTATIONS, readConfig } from './config.ts'

let warnings: string[]
let spy: jest.SpyInstance

beforeEach(() => {
  warnings = []
  spy = jest.spyOn(process, 'emitWarning').mockImplementation(((message: string | Error) => {
    warnings.push(String(message))
  }) as typeof process.emitWarning)
})
afterEach(() => spy.mockRestore())

describe('readConfig', () => {
  it('defaults: everything on, nothing ignored or captured, info level, not disabled', () => {
    const config = readConfig({})
    expect(config.sdkDisabled).toBe(false)
    expect(config.logLevel).toBe('info')
    expect([...config.instrumentations]).toEqual([...INSTRUMENTATIONS])
    expect(config.server).toEqual({})
    expect(warnings).toEqual([])
  })

  it('OTEL_SDK_DISABLED: only "true" (any case) disables; core reports other values', () => {
    expect(readConfig({ OTEL_SDK_DISABLED: 'TRUE' }).sdkDisabled).toBe(true)
    expect(readConfig({ OTEL_SDK_DISABLED: 'false' }).sdkDisabled).toBe(false)
    expect(readConfig({ OTEL_SDK_DISABLED: 'yes' }).sdkDisabled).toBe(false)
    expect(warnings).toEqual([])
  })

  it('SPANLINE_DISABLED_INSTRUMENTATIONS: names, case-insensitive; unknown ones reported once and skipped', () => {
    const config = readConfig({ SPANLINE_DISABLED_INSTRUMENTATIONS: ' Express, fetch ,,nope' })
    expect([...config.instrumentations]).toEqual(['http-server', 'koa', 'fastify', 'http-client'])
    expect(warnings).toEqual([expect.stringMatching(/^SPANLINE_DISABLED_INSTRUMENTATIONS=".*" names an unknown instrumentation "nope", ignored; known: http-server, express/)])
  })

  it('SPANLINE_IGNORE_PATHS: paths and globs; an entry without a leading slash is reported and dropped', () => {
    const config = readConfig({ SPANLINE_IGNORE_PATHS: '/health, /static/**, metrics' })
    expect(config.server.ignore).toEqual(['/health', '/static/**'])
    expect(warnings).toEqual([expect.stringContaining('SPANLINE_IGNORE_PATHS="/health, /static/**, metrics" entry "metrics" is not a path starting with "/"')])
  })

  it('server and client header capture: lower-cased header names; bad names reported', () => {
    const config = readConfig({
      OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS: 'X-Tenant, User-Agent, bad header',
      OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_RESPONSE_HEADERS: 'Content-Type',
      OTEL_INSTRUMENTATION_HTTP_CLIENT_CAPTURE_RESPONSE_HEADERS: 'x-cache',
    })
    expect(config.server.captureHeaders).toEqual({ request: ['x-tenant', 'user-agent'], response: ['content-type'] })
    expect(config.client.captureHeaders).toEqual({ request: [], response: ['x-cache'] })
    expect(readConfig({}).client.captureHeaders).toBeUndefined()
    expect(warnings).toEqual([
      expect.stringContaining('OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS="X-Tenant, User-Agent, bad header" entry "bad header" is not a header name'),
    ])
  })

  it('OTEL_LOG_LEVEL: OpenTelemetry\'s names, any case; an unknown one is reported and info is used', () => {
    expect(readConfig({ OTEL_LOG_LEVEL: 'DEBUG' }).logLevel).toBe('debug')
    expect(readConfig({ OTEL_LOG_LEVEL: 'none' }).logLevel).toBe('none')
    expect(readConfig({ OTEL_LOG_LEVEL: 'chatty' }).logLevel).toBe('info')
    expect(warnings).toEqual(['OTEL_LOG_LEVEL="chatty" is not one of none, error, warn, info, debug, verbose, all; using info'])
  })

  it('reports the same bad value once per process', () => {
    readConfig({ SPANLINE_IGNORE_PATHS: 'again' })
    readConfig({ SPANLINE_IGNORE_PATHS: 'again' })
    expect(warnings).toHaveLength(1)
  })
})
