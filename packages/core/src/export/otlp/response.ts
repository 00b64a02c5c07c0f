import { decodeTraceResponse } from './decode.ts'

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
    const json = protocol === 'http/json' || (contentType !== undefined && contentType.includes('json'))
    const response = json ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : decodeTraceResponse(body)
    const p = response.partialSuccess as { rejectedSpans?: unknown; errorMessage?: unknown } | undefined | null
    if (p === undefined || p === null) return undefined
    return { rejected: Number(p.rejectedSpans ?? 0) || 0, message: typeof p.errorMessage === 'string' ? p.errorMessage : '' }
  } catch {
    return undefined
  }
}
