// @spanline/core/testing: helpers for users' own tests.
export { InMemorySpanExporter } from './export/memory.ts'
export {
  anyValue,
  attributeMap,
  startOtlpReceiver,
  type OtlpReceiver,
  type OtlpReceiverOptions,
  type ReceivedRequest,
  type ReceivedSpan,
  type ReceiverReply,
} from './testing/otlp-receiver.ts'
export { decodeTraceRequest, type OtlpJson } from './export/otlp/decode.ts'
