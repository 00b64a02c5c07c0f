/**
 * Decodes OTLP trace messages from protobuf into the OTLP JSON mapping
 * (lowerCamelCase keys, hex ids, 64-bit integers as decimal strings, enums as
 * numbers): the exporter reads partial-success responses with it, and the
 * test receiver reads requests, so both protocols give one shape. Driven by a
 * table of the few messages involved; unknown fields are skipped, as protobuf
 * requires. Not a hot path (BigInt varints keep 64-bit values exact).
 */
type FieldType = 'string' | 'hex' | 'bytes' | 'uint' | 'int64' | 'fixed64' | 'fixed32' | 'bool' | 'double' | `msg:${string}`
type Field = readonly [name: string, type: FieldType, repeated?: boolean]
type Schema = Readonly<Record<number, Field>>

const SCHEMAS: Readonly<Record<string, Schema>> = {
  ExportTraceServiceRequest: { 1: ['resourceSpans', 'msg:ResourceSpans', true] },
  ExportTraceServiceResponse: { 1: ['partialSuccess', 'msg:ExportTracePartialSuccess'] },
  ExportTracePartialSuccess: { 1: ['rejectedSpans', 'int64'], 2: ['errorMessage', 'string'] },
  ResourceSpans: { 1: ['resource', 'msg:Resource'], 2: ['scopeSpans', 'msg:ScopeSpans', true], 3: ['schemaUrl', 'string'] },
  Resource: { 1: ['attributes', 'msg:KeyValue', true], 2: ['droppedAttributesCount', 'uint'] },
  ScopeSpans: { 1: ['scope', 'msg:InstrumentationScope'], 2: ['spans', 'msg:Span', true], 3: ['schemaUrl', 'string'] },
  InstrumentationScope: { 1: ['name', 'string'], 2: ['version', 'string'], 3: ['attributes', 'msg:KeyValue', true], 4: ['droppedAttributesCount', 'uint'] },
  Span: {
    1: ['traceId', 'hex'], 2: ['spanId', 'hex'], 3: ['traceState', 'string'], 4: ['parentSpanId', 'hex'], 5: ['name', 'string'],
    6: ['kind', 'uint'], 7: ['startTimeUnixNano', 'fixed64'], 8: ['endTimeUnixNano', 'fixed64'], 9: ['attributes', 'msg:KeyValue', true],
    10: ['droppedAttributesCount', 'uint'], 11: ['events', 'msg:Event', true], 12: ['droppedEventsCount', 'uint'],
    13: ['links', 'msg:Link', true], 14: ['droppedLinksCount', 'uint'], 15: ['status', 'msg:Status'], 16: ['flags', 'fixed32'],
  },
  Event: { 1: ['timeUnixNano', 'fixed64'], 2: ['name', 'string'], 3: ['attributes', 'msg:KeyValue', true], 4: ['droppedAttributesCount', 'uint'] },
  Link: {
    1: ['traceId', 'hex'], 2: ['spanId', 'hex'], 3: ['traceState', 'string'], 4: ['attributes', 'msg:KeyValue', true],
    5: ['droppedAttributesCount', 'uint'], 6: ['flags', 'fixed32'],
  },
  Status: { 2: ['message', 'string'], 3: ['code', 'uint'] },
  KeyValue: { 1: ['key', 'string'], 2: ['value', 'msg:AnyValue'] },
  AnyValue: {
    1: ['stringValue', 'string'], 2: ['boolValue', 'bool'], 3: ['intValue', 'int64'], 4: ['doubleValue', 'double'],
    5: ['arrayValue', 'msg:ArrayValue'], 6: ['kvlistValue', 'msg:KeyValueList'], 7: ['bytesValue', 'bytes'],
  },
  ArrayValue: { 1: ['values', 'msg:AnyValue', true] },
  KeyValueList: { 1: ['values', 'msg:KeyValue', true] },
}

export type OtlpJson = Record<string, unknown>

/** Decodes `buf` as an ExportTraceServiceRequest. Throws a RangeError on malformed input. */
export function decodeTraceRequest(buf: Uint8Array): OtlpJson {
  return decodeMessage(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), 'ExportTraceServiceRequest')
}

/** Decodes `buf` as an ExportTraceServiceResponse. Throws a RangeError on malformed input. */
export function decodeTraceResponse(buf: Uint8Array): OtlpJson {
  return decodeMessage(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength), 'ExportTraceServiceResponse')
}

function decodeMessage(buf: Buffer, type: string): OtlpJson {
  const schema = SCHEMAS[type]!
  const out: OtlpJson = {}
  let pos = 0
  while (pos < buf.length) {
    const [tag, afterTag] = readVarint(buf, pos)
    pos = afterTag
    const fieldNo = Number(tag >> 3n)
    const wire = Number(tag & 7n)
    const field = schema[fieldNo]
    if (field === undefined) {
      pos = skip(buf, pos, wire)
      continue
    }
    const [name, ftype, repeated] = field
    let value: unknown
    if (wire === 0) {
      const [v, p] = readVarint(buf, pos)
      pos = p
      value = ftype === 'bool' ? v !== 0n : ftype === 'int64' ? BigInt.asIntN(64, v).toString() : Number(v)
    } else if (wire === 1) {
      if (pos + 8 > buf.length) throw new RangeError('truncated fixed64')
      value = ftype === 'double' ? buf.readDoubleLE(pos) : buf.readBigUInt64LE(pos).toString()
      pos += 8
    } else if (wire === 5) {
      if (pos + 4 > buf.length) throw new RangeError('truncated fixed32')
      value = buf.readUInt32LE(pos)
      pos += 4
    } else if (wire === 2) {
      const [len, p] = readVarint(buf, pos)
      const end = p + Number(len)
      if (end > buf.length) throw new RangeError('truncated length-delimited field')
      const slice = buf.subarray(p, end)
      pos = end
      if (ftype === 'string') value = slice.toString('utf8')
      else if (ftype === 'hex') value = slice.toString('hex')
      else if (ftype === 'bytes') value = slice.toString('base64')
      else if (ftype.startsWith('msg:')) value = decodeMessage(slice, ftype.slice(4))
      else throw new RangeError(`field ${name} has the wrong wire type`)
    } else {
      throw new RangeError(`unsupported wire type ${wire}`)
    }
    if (repeated) ((out[name] ??= []) as unknown[]).push(value)
    else out[name] = value
  }
  return out
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n
  let shift = 0n
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new RangeError('truncated varint')
    const b = buf[pos++]!
    result |= BigInt(b & 0x7f) << shift
    if (b < 0x80) return [result, pos]
    shift += 7n
  }
  throw new RangeError('varint too long')
}

function skip(buf: Buffer, pos: number, wire: number): number {
  if (wire === 0) return readVarint(buf, pos)[1]
  if (wire === 1) return pos + 8
  if (wire === 5) return pos + 4
  if (wire === 2) {
    const [len, p] = readVarint(buf, pos)
    return p + Number(len)
  }
  throw new RangeError(`unsupported wire type ${wire}`)
}
