/**
 * Reads `partial_success` from an ExportTraceServiceResponse
 * (https://opentelemetry.io/docs/specs/otlp/#partial-success-1), in either
 * encoding. Anything unreadable counts as plain success: the spec says a
 * client must not retry a 2xx, whatever its body.
 */
export interface PartialSuccess {
  readonly rejected: number
  readonly message: string
}

export function parsePartialSuccess(body: Buffer, protocol: string, contentType: string | undefined): PartialSuccess | undefined {
  if (body.length === 0) return undefined
  try {
    if (protocol === 'http/json' || (contentType !== undefined && contentType.includes('json'))) {
      const parsed = JSON.parse(body.toString('utf8')) as { partialSuccess?: { rejectedSpans?: unknown; errorMessage?: unknown } }
      const p = parsed.partialSuccess
      if (p === undefined || p === null) return undefined
      return { rejected: Number(p.rejectedSpans ?? 0) || 0, message: typeof p.errorMessage === 'string' ? p.errorMessage : '' }
    }
    return readProtobuf(body)
  } catch {
    return undefined
  }
}

/** ExportTraceServiceResponse { PartialSuccess partial_success = 1 { int64 rejected_spans = 1; string error_message = 2 } } */
function readProtobuf(buf: Buffer): PartialSuccess | undefined {
  let pos = 0
  while (pos < buf.length) {
    const [tag, p1] = varint(buf, pos)
    pos = p1
    const field = tag >>> 3
    const wire = tag & 7
    if (field === 1 && wire === 2) {
      const [len, p2] = varint(buf, pos)
      return readPartial(buf.subarray(p2, p2 + len))
    }
    pos = skip(buf, pos, wire)
  }
  return undefined
}

function readPartial(buf: Buffer): PartialSuccess {
  let rejected = 0
  let message = ''
  let pos = 0
  while (pos < buf.length) {
    const [tag, p1] = varint(buf, pos)
    pos = p1
    const field = tag >>> 3
    const wire = tag & 7
    if (field === 1 && wire === 0) {
      const [v, p2] = varint(buf, pos)
      rejected = v
      pos = p2
    } else if (field === 2 && wire === 2) {
      const [len, p2] = varint(buf, pos)
      message = buf.toString('utf8', p2, p2 + len)
      pos = p2 + len
    } else pos = skip(buf, pos, wire)
  }
  return { rejected, message }
}

function varint(buf: Buffer, pos: number): [number, number] {
  let result = 0
  let shift = 1
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new RangeError('truncated varint')
    const b = buf[pos++]!
    result += (b & 0x7f) * shift
    if (b < 0x80) return [result, pos]
    shift *= 128
  }
  throw new RangeError('varint too long')
}

function skip(buf: Buffer, pos: number, wire: number): number {
  switch (wire) {
    case 0:
      return varint(buf, pos)[1]
    case 1:
      return pos + 8
    case 2: {
      const [len, p] = varint(buf, pos)
      return p + len
    }
    case 5:
      return pos + 4
    default:
      throw new RangeError(`unsupported wire type ${wire}`)
  }
}
