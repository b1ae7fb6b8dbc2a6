import type { AuthorisedCaller } from '../access/caller';
import type { ReadTarget, ReplicaReads } from '../store/replicaReads';
import type { FhirServiceDeps } from './fhirService';
import type { AccessFilter } from './ports';

/**
 * Which database an aggregated read runs on when a streaming replica is configured: the decision belongs to
 * the service (Authorization hands out the aggregated service with the stores picked here), never to a door.
 * The replica serves a read unless
 * - it is a live delivery (a subscription event announces a change the primary just committed): primary;
 * - the replica has not replayed, within REPLICA_MAX_WAIT_MS, the caller's last write, or — when the caller's
 *   access reads consent rows — the latest consent change (a revocation counts on the next request;
 *   replicaReads.ts): primary.
 */
export type ReadReason = 'replica' | 'live' | 'replica-behind';

export interface AggregatedReadsDeps {
  /** The services' stores on the primary, and the same stores on the replica (read-only: nothing there writes). */
  primary: FhirServiceDeps;
  replica: FhirServiceDeps;
  reads: ReplicaReads;
  /** Told where each aggregated service was pointed, and why (metrics). */
  onRoute?(target: ReadTarget, reason: ReadReason): void;
}

export class AggregatedReads {
  constructor(private readonly deps: AggregatedReadsDeps) {}

  /** The stores the caller's aggregated service reads; `live`: a delivery of a change just committed on the primary. */
  async storesFor(caller: AuthorisedCaller, filter: AccessFilter, options: { live?: boolean } = {}): Promise<FhirServiceDeps> {
    const reason: ReadReason = options.live
      ? 'live'
      : (await this.deps.reads.target(caller.clientId, { readsConsent: filter.readsConsent })) === 'replica'
        ? 'replica'
        : 'replica-behind';
    const target: ReadTarget = reason === 'replica' ? 'replica' : 'primary';
    this.deps.onRoute?.(target, reason);
    return target === 'replica' ? this.deps.replica : this.deps.primary;
  }
}
