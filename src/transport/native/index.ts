/**
 * Public surface of the native transport (docs/native-protocol.md): the gateway-side client
 * (NativeUpstream), the wire codec the worker runtime (src/worker) shares, and the shared types.
 *
 * @example
 * import { NativeUpstream } from '../transport/native/index.js'
 * const up = new NativeUpstream('swy://127.0.0.1:9000')
 */
export { NativeUpstream, NativeStream, parseNativeAddress } from './client.js'
export type { NativeStreamHandler, NativeUpstreamOptions, NativeUpstreamStats } from './client.js'
export { NativeFailure, NativeProtocolError, NativeStreamError } from './errors.js'
export type { NativeErrorCode, NativeFailureReason, WorkerErrorInfo } from './errors.js'
export {
  DEFAULT_MAX_FRAME_BYTES, FRAME_OVERHEAD, FrameKind, FrameReader, FrameWriter, HEADER_BYTES, KIND_NAMES, PROTOCOL_VERSION,
  decodeBody, decodeItem, decodeRequest, encodeError, encodeRequest, packr, tokensBytes, tokensView, unpackr
} from './protocol.js'
export type { ErrorBody, FrameKindValue, FrameSink } from './protocol.js'
export type { NativeEndpoint, NativeFinishReason, NativeMessage, NativeRequest, NativeSampling, NativeUsage, ResponseItem } from './types.js'
