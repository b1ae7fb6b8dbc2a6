import type { Bundle, Resource } from '../fhir/types';

/**
 * What the GraphQL door needs from the service layer, and nothing more: the resolvers hold no business
 * logic, they call this. `endpoint` selects a customer endpoint of the caller; absent means the aggregated
 * record. Implemented over FhirService in src/graphql/serviceSource.ts.
 */
export interface GraphqlDataSource {
  read(type: string, id: string, endpoint?: string): Promise<Resource>;
  /** Several reads by id at once (reference resolution): the ones found, in no particular order. */
  readMany(type: string, ids: string[], endpoint?: string): Promise<Resource[]>;
  search(type: string, params: [string, string][], endpoint?: string): Promise<Bundle>;
  create(type: string, resource: Resource, endpoint: string): Promise<Resource>;
  update(type: string, id: string, resource: Resource, endpoint: string): Promise<Resource>;
  delete(type: string, id: string, endpoint: string): Promise<void>;
}
