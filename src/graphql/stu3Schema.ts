import type { GraphQLSchema } from 'graphql';
import { buildFhirSchema } from './fhirSchema';

/**
 * The schema of an STU3 customer endpoint's own `$graphql`: FHIR 3.0's shapes (3.0 graphql.html), generated
 * by the same builder as R4's (fhirSchema.ts, fhirModel.ts) from the STU3 StructureDefinitions the project
 * ships (src/fhir/stu3). So `Condition.assertedDate`, `MedicationStatement.taken`, `ProcedureRequest` and
 * `ReferralRequest` can be selected, an R4-only field (`Condition.recordedDate`) or search argument
 * (`recorded_date`) is refused by validation naming it, and reverse references take STU3's reference
 * parameters alone. Beside them, the same aggregation and admin fields as R4 endpoints' `$graphql`.
 *
 * Its reads, searches and mutations take no `_endpoint`: they answer the endpoint whose `$graphql` this is
 * (another endpoint, R4, or the aggregated record would not fit STU3's shapes). /graphql's
 * `XList(_endpoint: <STU3 endpoint>)` keeps R4's shapes (README, GraphQL).
 *
 * Built on the first STU3 `$graphql` (a server without STU3 endpoints never holds it, nor STU3's
 * definitions), then kept, as R4's is built on the first GraphQL request. An instance-level `$graphql`
 * takes its root from the same STU3 types (graphqlDoor.ts).
 */
export function buildStu3Schema(): GraphQLSchema {
  return buildFhirSchema('STU3');
}
