import 'reflect-metadata';
import { Field, ID, Int, ObjectType } from 'type-graphql';

/**
 * The aggregation report (aggregator/report.ts) in GraphQL: `aggregationReport(endpoint)` for the endpoint's
 * owner and `adminAggregationReport(endpoint)` for the admin token return the same shape.
 */
@ObjectType({ description: 'Upstream resources of an endpoint (or of one type) by aggregation outcome' })
export class AggregationCounts {
  @Field(() => Int) included!: number;
  @Field(() => Int) excluded!: number;
  @Field(() => Int, { description: 'Deleted on the endpoint after they were aggregated (not counted as excluded)' }) deleted!: number;
  @Field(() => Int, { description: 'Waiting in the aggregation queue' }) pending!: number;
  @Field(() => Int, { description: 'Failed repeatedly and set aside (see aggregationStatus)' }) parked!: number;
}

@ObjectType()
export class AggregationTypeCounts extends AggregationCounts {
  @Field(() => String) type!: string;
}

@ObjectType({ description: 'Exclusions of one rule that refer to resources of one type' })
export class AggregationExclusionTarget {
  @Field(() => String) type!: string;
  @Field(() => Int) count!: number;
}

@ObjectType({ description: 'Resources of one type excluded by one rule' })
export class AggregationExclusion {
  @Field(() => String) type!: string;
  @Field(() => String, { description: 'e.g. identifier-missing, target-not-aggregated, no-source-organization' }) rule!: string;
  @Field(() => Int) count!: number;
  @Field(() => String) description!: string;
  @Field(() => String) sampleReason!: string;
  @Field(() => [String], { description: 'A few of them, as Type/id on the endpoint' }) examples!: string[];
  @Field(() => [AggregationExclusionTarget], {
    description: 'For a rule about a reference (reference-to-unsupported-type, target-not-aggregated): the types referred to, largest first',
  })
  targets!: AggregationExclusionTarget[];
}

@ObjectType()
export class AggregationCascadeStep {
  @Field(() => String) type!: string;
  @Field(() => Int) count!: number;
}

@ObjectType({ description: 'Resources excluded for a reason of their own, and what is excluded because of them' })
export class AggregationRootCause {
  @Field(() => String) type!: string;
  @Field(() => String) rule!: string;
  @Field(() => Int, { nullable: true, description: 'Null when your token may not read resources of this type' }) count!: number | null;
  @Field(() => Int, { description: 'Resources excluded through references to them (or as the default source organisation)' }) excludedThrough!: number;
  @Field(() => Int) asSourceOrganization!: number;
  @Field(() => [AggregationCascadeStep]) cascade!: AggregationCascadeStep[];
  @Field(() => String, { description: 'e.g. "40 Organizations have no identifier → 4,398 resources excluded through references to them"' }) summary!: string;
  @Field(() => [String]) examples!: string[];
}

@ObjectType({ description: 'What the aggregator made of the resources of one endpoint, computed when asked' })
export class AggregationReport {
  @Field(() => ID) endpoint!: string;
  @Field(() => String, { description: 'ISO 8601 instant' }) generatedAt!: string;
  @Field(() => AggregationCounts) totals!: AggregationCounts;
  @Field(() => [AggregationTypeCounts]) types!: AggregationTypeCounts[];
  @Field(() => [AggregationExclusion], { description: 'Largest first' }) exclusions!: AggregationExclusion[];
  @Field(() => [AggregationRootCause], { description: 'Largest first; together they account for every exclusion' }) rootCauses!: AggregationRootCause[];
}
