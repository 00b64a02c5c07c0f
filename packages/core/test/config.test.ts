import { hostname } from 'node:os'
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createResource, createTracer, DEFAULT_SPAN_LIMITS, VERSION, type ReadableSpan } from '../src/index.ts'
import { resolveSpanLimits } from '../src/limits.ts'
import { memoryTracer } from './helpers.ts'

describe('span limits', () => {
  it('defaults are OpenTelemetry\'s', () => {
    expect(resolveSpanLimits(undefined, {})).toEqual({
      attributeCountLimit: 128,
      attributeValueLengthLimit: Infinity,
      eventCountLimit: 128,
      linkCountLimit: 128,
      attributePerEventCountLimit: 128,
      attributePerLinkCountLimit: 128,
    })
    expect(DEFAULT_SPAN_LIMITS.attributeCountLimit).toBe(128)
  })

  it('read OTEL_SPAN_* (over the general OTEL_ATTRIBUTE_*), and code wins over env', () => {
    const env = {
      OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: '3',
      OTEL_ATTRIBUTE_COUNT_LIMIT: '99',
      OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '5',
      OTEL_SPAN_EVENT_COUNT_LIMIT: '2',
      OTEL_SPAN_LINK_COUNT_LIMIT: '1',
    }
    expect(resolveSpanLimits(undefined, env)).toMatchObject({
      attributeCountLimit: 3, attributeValueLengthLimit: 5, eventCountLimit: 2, linkCountLimit: 1,
    })
    expect(resolveSpanLimits({ attributeCountLimit: 7 }, env).attributeCountLimit).toBe(7)
    expect(resolveSpanLimits(undefined, { OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: '9', OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '5' }).attributeValueLengthLimit).toBe(9)
  })

  it('an invalid env limit is reported and the default used', () => {
    expect(resolveSpanLimits(undefined, { OTEL_SPAN_EVENT_COUNT_LIMIT: '-3' }).eventCountLimit).toBe(128)
    expect(resolveSpanLimits(undefined, { OTEL_SPAN_EVENT_COUNT_LIMIT: 'lots' }).eventCountLimit).toBe(128)
  })

  it('drop and count what goes over, and truncate long strings', () => {
    const { tracer, exporter } = memoryTracer({
      env: { OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: '2', OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: '4', OTEL_SPAN_EVENT_COUNT_LIMIT: '1', OTEL_SPAN_LINK_COUNT_LIMIT: '1', OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT: '1' },
    })
    const other = tracer.startSpan('other')
    const span = tracer.startSpan('limited', { links: [{ context: other }, { context: other }] })
    span.setAttribute('a', 'abcdefgh').setAttribute('b', ['123456', 'x']).setAttribute('c', 1).setAttribute('d', 2)
    span.setAttribute('a', 'zz') // updating an existing key is always allowed
    span.addEvent('e1', { x: 1, y: 2 }).addEvent('e2').addEvent('e3')
    span.end()
    const s = exporter.getFinishedSpans()[0] as ReadableSpan
    expect(s.attributes).toEqual({ a: 'zz', b: ['1234', 'x'] })
    expect(s.droppedAttributesCount).toBe(2)
    expect(s.events).toHaveLength(1)
    expect(s.events![0]!.attributes).toEqual({ x: 1 })
    expect(s.events![0]!.droppedAttributesCount).toBe(1)
    expect(s.droppedEventsCount).toBe(2)
    expect(s.links).toHaveLength(1)
    expect(s.droppedLinksCount).toBe(1)
  })
})

describe('resource', () => {
  const appDir = mkdtempSync(join(tmpdir(), 'spanline-app-'))
  writeFileSync(join(appDir, 'package.json'), JSON.stringify({ name: 'my-shop-api' }))
  mkdirSync(join(appDir, 'src'))

  it('takes service.name from the option first', () => {
    const r = createResource({ serviceName: 'opt', env: { OTEL_SERVICE_NAME: 'env', OTEL_RESOURCE_ATTRIBUTES: 'service.name=attr' }, appDir })
    expect(r.attributes['service.name']).toBe('opt')
  })
  it('then OTEL_SERVICE_NAME, then OTEL_RESOURCE_ATTRIBUTES, then package.json, then unknown_service:node', () => {
    expect(createResource({ env: { OTEL_SERVICE_NAME: 'env', OTEL_RESOURCE_ATTRIBUTES: 'service.name=attr' }, appDir }).attributes['service.name']).toBe('env')
    expect(createResource({ env: { OTEL_RESOURCE_ATTRIBUTES: 'service.name=attr' }, appDir }).attributes['service.name']).toBe('attr')
    expect(createResource({ env: {}, appDir: join(appDir, 'src') }).attributes['service.name']).toBe('my-shop-api')
    expect(createResource({ env: {}, appDir: '/' }).attributes['service.name']).toBe('unknown_service:node')
  })
  it('parses OTEL_RESOURCE_ATTRIBUTES with percent-decoding, skipping malformed pairs', () => {
    const r = createResource({ env: { OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod,team=a%20b,broken,=x,bad=%E0%A4%A' }, appDir })
    expect(r.attributes['deployment.environment.name']).toBe('prod')
    expect(r.attributes.team).toBe('a b')
    expect(r.attributes.bad).toBeUndefined()
    expect(r.attributes.broken).toBeUndefined()
  })
  it('carries telemetry.sdk.*, process.* and host.name', () => {
    const r = createResource({ env: {}, appDir })
    expect(r.attributes).toMatchObject({
      'telemetry.sdk.name': 'spanline',
      'telemetry.sdk.language': 'nodejs',
      'telemetry.sdk.version': VERSION,
      'process.pid': process.pid,
      'process.runtime.name': 'nodejs',
      'process.runtime.version': process.versions.node,
      'host.name': hostname(),
    })
  })
  it('VERSION matches package.json', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }
    expect(VERSION).toBe(pkg.version)
  })
  it('a tracer builds its resource from its options and env', () => {
    const t = createTracer({ env: { OTEL_RESOURCE_ATTRIBUTES: 'k=v' }, resource: { 'service.version': '2.0.0' }, serviceName: 'svc' })
    expect(t.resource.attributes).toMatchObject({ 'service.name': 'svc', k: 'v', 'service.version': '2.0.0' })
  })
})
