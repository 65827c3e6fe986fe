/**
 * Decodes vLLM / SGLang KV event batches (DESIGN 4.2) straight into reusable scratch objects and
 * hands each event to a sink:
 * - payload: msgpack `[ts, events[], dp_rank?]` (a map {ts, events, data_parallel_rank} is also read);
 * - each event either a map with a `type` key (fields selected by name, in any order, unknown ones
 *   skipped) or a legacy tagged array `[type, ...fields in declaration order]`;
 * - BlockStored: block_hashes, parent_block_hash, token_ids, block_size, lora_id, medium, lora_name,
 *   then optional extra_keys, group_idx, kv_cache_spec_kind, kv_cache_spec_sliding_window, session_id;
 *   BlockRemoved: block_hashes, medium, group_idx?; AllBlocksCleared: nothing.
 *
 * Block hashes become int32 (hi, lo) pairs at decode (msgpack-cursor.ts `hash`), whatever their
 * encoding (uint64, int64, small ints, bytes); token ids land in a reused Uint32Array, ready for
 * hashing. Nothing is allocated per block; a batch allocates only a DataView and, when present,
 * the lora_name string.
 *
 * @example
 * const decoder = new KvBatchDecoder()
 * decoder.decode(payload, sink) // calls sink.stored / removed / cleared in order
 */
import { MsgpackCursor } from './msgpack-cursor.js'

/** A BlockStored or BlockRemoved, as decoded; the decoder reuses it for the next event. */
export class DecodedBlocks {
  /** Engine hashes, [hi, lo] per block. */
  engine: Int32Array
  count: number
  hasParent: boolean
  /** Parent's engine hash [hi, lo] when `hasParent`. */
  readonly parent: Int32Array
  /** All stored blocks' tokens, concatenated (BlockStored only). */
  tokens: Uint32Array
  tokenCount: number
  /** −1 when absent. */
  blockSize: number
  loraId: number | null
  loraName: string | null
  /** "GPU" or nil; anything else (e.g. "CPU" offload tiers) is `false`. */
  gpu: boolean
  /** KV cache group (hybrid models); 0 when absent. */
  groupIdx: number

  constructor () {
    this.engine = new Int32Array(128)
    this.count = 0
    this.hasParent = false
    this.parent = new Int32Array(2)
    this.tokens = new Uint32Array(1024)
    this.tokenCount = 0
    this.blockSize = -1
    this.loraId = null
    this.loraName = null
    this.gpu = true
    this.groupIdx = 0
  }

  clear (): void {
    this.count = 0
    this.hasParent = false
    this.tokenCount = 0
    this.blockSize = -1
    this.loraId = null
    this.loraName = null
    this.gpu = true
    this.groupIdx = 0
  }
}

/**
 * The blocks the router indexes: the GPU tier of KV cache group 0. vLLM's CPU offload tier reports
 * the same hashes (removing them there must not drop the GPU's), and hybrid models publish one
 * stream per group for the same tokens.
 */
export function isIndexedTier (ev: DecodedBlocks): boolean {
  return ev.gpu && ev.groupIdx === 0
}

/** The adapter a stored block belongs to: its LoRA name, else `lora-id:N`, else null (the base model). */
export function loraOf (ev: DecodedBlocks): string | null {
  return ev.loraName ?? (ev.loraId === null ? null : `lora-id:${ev.loraId}`)
}

/** Receives decoded events in batch order. `ev` is only valid during the call. */
export interface KvEventSink {
  stored (ev: DecodedBlocks): void
  removed (ev: DecodedBlocks): void
  cleared (): void
  /** An event of a type we do not know (skipped). */
  unknown (): void
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const T_STORED = enc('BlockStored')
const T_REMOVED = enc('BlockRemoved')
const T_CLEARED = enc('AllBlocksCleared')
const GPU = enc('GPU')

// Event kinds and the fields we read (plain numbers: the STYLE guide prefers them to enums).
const UNKNOWN = 0
const STORED = 1
const REMOVED = 2
const CLEARED = 3

const F_SKIP = 0
const F_BLOCK_HASHES = 1
const F_PARENT = 2
const F_TOKEN_IDS = 3
const F_BLOCK_SIZE = 4
const F_LORA_ID = 5
const F_MEDIUM = 6
const F_LORA_NAME = 7
const F_GROUP_IDX = 8
const F_TYPE = 9

/** Map keys we read, by name (FIELD_IDS[i] for FIELD_KEYS[i]); everything else is skipped. */
const FIELD_KEYS = ['type', 'block_hashes', 'parent_block_hash', 'token_ids', 'block_size', 'lora_id', 'medium', 'lora_name', 'group_idx'].map(enc)
const FIELD_IDS = [F_TYPE, F_BLOCK_HASHES, F_PARENT, F_TOKEN_IDS, F_BLOCK_SIZE, F_LORA_ID, F_MEDIUM, F_LORA_NAME, F_GROUP_IDX]

// Legacy array positions after the tag (vLLM's field declaration order).
const LEGACY_STORED = [F_BLOCK_HASHES, F_PARENT, F_TOKEN_IDS, F_BLOCK_SIZE, F_LORA_ID, F_MEDIUM, F_LORA_NAME, F_SKIP /* extra_keys */, F_GROUP_IDX]
const LEGACY_REMOVED = [F_BLOCK_HASHES, F_MEDIUM, F_GROUP_IDX]

/** Keys of a map-form batch (not vLLM's, accepted for other publishers). */
const BATCH_KEYS = ['ts', 'events', 'data_parallel_rank'].map(enc)

export class KvBatchDecoder {
  /** Timestamp (seconds) and data-parallel rank of the last decoded batch (rank −1 when absent). */
  ts: number
  dpRank: number
  /** Events in the last decoded batch. */
  events: number
  private readonly c: MsgpackCursor
  private readonly ev: DecodedBlocks

  constructor () {
    this.ts = 0
    this.dpRank = -1
    this.events = 0
    this.c = new MsgpackCursor()
    this.ev = new DecodedBlocks()
  }

  /** Decodes one batch payload, calling `sink` per event. Throws KvDecodeError on malformed input (events before it were delivered). */
  decode (payload: Uint8Array, sink: KvEventSink): void {
    const c = this.c
    c.reset(payload)
    this.ts = 0
    this.dpRank = -1
    this.events = 0
    let n = c.arrayHeader()
    if (n >= 0) {
      if (n < 2) c.fail('a batch has [ts, events] at least')
      this.ts = c.num()
      this.decodeEvents(sink)
      if (n >= 3) this.dpRank = c.nil() ? -1 : c.int()
      for (let i = 3; i < n; i++) c.skip()
      return
    }
    n = c.mapHeader()
    if (n < 0) c.fail('a batch is an array [ts, events, dp_rank]')
    for (let i = 0; i < n; i++) {
      switch (this.key(BATCH_KEYS)) {
        case 0: this.ts = c.num(); break
        case 1: this.decodeEvents(sink); break
        case 2: this.dpRank = c.nil() ? -1 : c.int(); break
        default: c.skip()
      }
    }
  }

  private decodeEvents (sink: KvEventSink): void {
    const c = this.c
    const n = c.arrayHeader()
    if (n < 0) c.fail('events must be an array')
    for (let i = 0; i < n; i++) {
      this.decodeEvent(sink)
      this.events++
    }
  }

  private decodeEvent (sink: KvEventSink): void {
    const c = this.c
    const ev = this.ev
    ev.clear()
    let kind = UNKNOWN
    let n = c.mapHeader()
    if (n >= 0) {
      for (let i = 0; i < n; i++) {
        const k = this.key(FIELD_KEYS)
        const f = k < 0 ? F_SKIP : FIELD_IDS[k]!
        if (f === F_TYPE) kind = this.kind()
        else this.field(f)
      }
    } else {
      n = c.arrayHeader()
      if (n < 1) c.fail('an event is a map or a tagged array')
      kind = this.kind()
      const order = kind === STORED ? LEGACY_STORED : kind === REMOVED ? LEGACY_REMOVED : null
      for (let i = 1; i < n; i++) this.field(order !== null && i - 1 < order.length ? order[i - 1]! : F_SKIP)
    }
    switch (kind) {
      case STORED: sink.stored(ev); break
      case REMOVED: sink.removed(ev); break
      case CLEARED: sink.cleared(); break
      default: sink.unknown()
    }
  }

  /** The event type from its tag string. */
  private kind (): number {
    const c = this.c
    const n = c.bytesHeader()
    if (n < 0) {
      c.skip()
      return UNKNOWN
    }
    c.need(n)
    const at = c.pos
    c.pos += n
    const expect = n === 11 ? T_STORED : n === 12 ? T_REMOVED : n === 16 ? T_CLEARED : null
    if (expect === null || !sameBytes(c.buf, at, expect)) return UNKNOWN
    return n === 11 ? STORED : n === 12 ? REMOVED : CLEARED
  }

  /** Reads a map key; returns its index in `names`, or −1 (for a non-string key, the key is skipped). */
  private key (names: readonly Uint8Array[]): number {
    const c = this.c
    const n = c.bytesHeader()
    if (n < 0) {
      c.skip()
      return -1
    }
    c.need(n)
    const at = c.pos
    c.pos += n
    for (let k = 0; k < names.length; k++) {
      const name = names[k]!
      if (name.length === n && sameBytes(c.buf, at, name)) return k
    }
    return -1
  }

  private field (f: number): void {
    const c = this.c
    const ev = this.ev
    switch (f) {
      case F_BLOCK_HASHES: {
        const n = c.arrayHeader()
        if (n < 0) c.fail('block_hashes must be an array')
        if (ev.engine.length < 2 * n) ev.engine = new Int32Array(Math.max(2 * n, 2 * ev.engine.length))
        for (let i = 0; i < n; i++) c.hash(ev.engine, 2 * i)
        ev.count = n
        return
      }
      case F_PARENT:
        if (c.nil()) ev.hasParent = false
        else {
          c.hash(ev.parent, 0)
          ev.hasParent = true
        }
        return
      case F_TOKEN_IDS: {
        const n = c.arrayHeader()
        if (n < 0) c.fail('token_ids must be an array')
        if (ev.tokens.length < n) ev.tokens = new Uint32Array(Math.max(n, 2 * ev.tokens.length))
        const t = ev.tokens
        const buf = c.buf
        for (let i = 0; i < n; i++) {
          // Fast path for the common small encodings; c.int() for the rest.
          const b = buf[c.pos]
          if (b !== undefined && b <= 0x7f) {
            t[i] = b
            c.pos++
          } else if (b === 0xcd && c.pos + 3 <= buf.length) {
            t[i] = (buf[c.pos + 1]! << 8) | buf[c.pos + 2]!
            c.pos += 3
          } else {
            t[i] = c.int()
          }
        }
        ev.tokenCount = n
        return
      }
      case F_BLOCK_SIZE: ev.blockSize = c.nil() ? -1 : c.int(); return
      case F_LORA_ID: ev.loraId = c.nil() ? null : c.int(); return
      case F_MEDIUM: ev.gpu = c.nil() || c.bytesEqual(GPU); return
      case F_LORA_NAME: ev.loraName = c.nil() ? null : c.str(); return
      case F_GROUP_IDX: ev.groupIdx = c.nil() ? 0 : c.int(); return
      default: c.skip()
    }
  }
}

function sameBytes (buf: Uint8Array, at: number, expect: Uint8Array): boolean {
  for (let i = 0; i < expect.length; i++) if (buf[at + i] !== expect[i]) return false
  return true
}
