import type { AuthorisedCaller } from '../access/caller';
import type { ReadTarget, ReplicaReads } from '../store/replicaReads';
import type { FhirServiceDeps } from './fhirService';
import type { AccessFilter } from './ports';

/**
 * Which database an aggregated read runs on when a streaming replica is configured: the decision belongs to
 * the service (Authorization hands out the aggregated service with the stores picked here), never to a door.
 * The replica serves a read unless
 * - the caller's access reads consent rows (a revocation must count on the next request, and the replica may
 *   not have replayed it yet): primary;
 * - it is a live delivery (a subscription event announces a change the primary just committed): primary;
 * - the caller wrote something the replica has not replayed within REPLICA_MAX_WAIT_MS (replicaReads.ts): primary.
 */
export type ReadReason = 'replica' | 'consent' | 'live' | 'replica-behind';

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
    const reason: ReadReason = options.live ? 'live' : filter.readsConsent ? 'consent' : (await this.deps.reads.target(caller.clientId)) === 'replica' ? 'replica' : 'replica-behind';
    const target: ReadTarget = reason === 'replica' ? 'replica' : 'primary';
    this.deps.onRoute?.(target, reason);
    return target === 'replica' ? this.deps.replica : this.deps.primary;
  }
}
