import type { Tx } from '../store/sql';
import type { ResourceRepository } from '../store/resourceRepository';
import type { Resource } from '../fhir/types';

/**
 * Where the native record meets the FHIR pipeline (issue 14, DESIGN §2): each writing organisation has an
 * internal R4 store, `native-<organisation id>`, into which every change of its native record is written,
 * mapped to R4, through the ordinary resource repository. Its write hooks index the resource and enqueue it in
 * the aggregator's outbox in the same transaction as the native row, so aggregation, history and search need
 * nothing new. The store is registered as an endpoint row of the organisation's customer (the aggregator
 * reads a store's customer and default source organisation from there); the authorisation point never hands
 * it out as a customer endpoint, so nobody writes to it but the native record.
 */
export const NATIVE_STORE_PREFIX = 'native-';

export function nativeStoreOf(organizationId: string): string {
  return `${NATIVE_STORE_PREFIX}${organizationId}`;
}

export function isNativeStore(store: string): boolean {
  return store.startsWith(NATIVE_STORE_PREFIX);
}

/** The identifier system of an organisation's public id, on the Organization its native store holds. */
export const ORGANIZATION_PUBLIC_ID_SYSTEM = 'urn:ietf:rfc:3986';

export interface WritingOrganization {
  id: string;
  customerId: string;
  name: string;
  publicId: string;
  /** The team every patient sent by demographics message must join (DESIGN §2). */
  defaultTeamId: string | null;
}

/**
 * Creates the organisation's native store on its first write: the endpoint row, and the Organization resource
 * its resources name as their source (DESIGN §3.7: the endpoint's default source organisation). Idempotent.
 */
export async function ensureNativeStore(tx: Tx, repo: ResourceRepository, organization: WritingOrganization): Promise<string> {
  const store = nativeStoreOf(organization.id);
  const inserted = await tx.execute(
    `INSERT INTO endpoint (id, customer_id, fhir_version, name, default_source_org) VALUES ($1, $2, 'R4', $3, $4) ON CONFLICT (id) DO NOTHING`,
    store,
    organization.customerId,
    `Native record of ${organization.name}`,
    `Organization/${organization.id}`,
  );
  if (inserted > 0) {
    const source: Resource & { id: string } = {
      resourceType: 'Organization',
      id: organization.id,
      identifier: [{ system: ORGANIZATION_PUBLIC_ID_SYSTEM, value: `urn:uuid:${organization.publicId}` }],
      name: organization.name,
      active: true,
    };
    await repo.update(store, source, {}, tx);
  }
  return store;
}
