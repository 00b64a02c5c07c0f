import type { Attributes, Link, SpanContext, SpanKind } from '../types.ts'
import { TraceFlags } from '../types.ts'
import { AlwaysOffSampler, AlwaysOnSampler } from './always.ts'
import type { Sampler, SamplingResult } from './sampler.ts'

export interface ParentBasedOptions {
  /** For spans without a parent. Required. */
  readonly root: Sampler
  /** Parent from another process, sampled (default: always on). */
  readonly remoteParentSampled?: Sampler
  /** Parent from another process, not sampled (default: always off). */
  readonly remoteParentNotSampled?: Sampler
  /** Parent in this process, sampled (default: always on). */
  readonly localParentSampled?: Sampler
  /** Parent in this process, not sampled (default: always off). */
  readonly localParentNotSampled?: Sampler
}

/**
 * Follows the parent's decision when there is a parent, and asks `root`
 * otherwise: https://opentelemetry.io/docs/specs/otel/trace/sdk/#parentbased
 */
export class ParentBasedSampler implements Sampler {
  readonly #root: Sampler
  readonly #remoteSampled: Sampler
  readonly #remoteNotSampled: Sampler
  readonly #localSampled: Sampler
  readonly #localNotSampled: Sampler

  constructor(options: ParentBasedOptions) {
    const on = new AlwaysOnSampler()
    const off = new AlwaysOffSampler()
    this.#root = options.root
    this.#remoteSampled = options.remoteParentSampled ?? on
    this.#remoteNotSampled = options.remoteParentNotSampled ?? off
    this.#localSampled = options.localParentSampled ?? on
    this.#localNotSampled = options.localParentNotSampled ?? off
  }

  shouldSample(
    parent: SpanContext | undefined,
    traceId: string,
    name: string,
    kind: SpanKind,
    attributes: Attributes | undefined,
    links: readonly Link[] | undefined,
  ): SamplingResult {
    const delegate = this.delegateFor(parent)
    return delegate.shouldSample(parent, traceId, name, kind, attributes, links)
  }

  /** The sampler that decides for a span with this parent. */
  delegateFor(parent: SpanContext | undefined): Sampler {
    if (parent === undefined) return this.#root
    if (parent.isRemote) return (parent.traceFlags & TraceFlags.SAMPLED) !== 0 ? this.#remoteSampled : this.#remoteNotSampled
    return (parent.traceFlags & TraceFlags.SAMPLED) !== 0 ? this.#localSampled : this.#localNotSampled
  }

  /** Internal (see shortcut.ts): root, remote sampled, remote not sampled, local sampled, local not sampled. */
  delegates(): readonly Sampler[] {
    return [this.#root, this.#remoteSampled, this.#remoteNotSampled, this.#localSampled, this.#localNotSampled]
  }

  toString(): string {
    return `ParentBased{root=${this.#root.toString()},remoteParentSampled=${this.#remoteSampled.toString()},` +
      `remoteParentNotSampled=${this.#remoteNotSampled.toString()},localParentSampled=${this.#localSampled.toString()},` +
      `localParentNotSampled=${this.#localNotSampled.toString()}}`
  }
}
