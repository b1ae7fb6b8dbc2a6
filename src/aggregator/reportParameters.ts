import type { Resource } from '../fhir/types';
import type { AggregationReport, ReportCounts } from './report';

/**
 * The aggregation report as a FHIR R4 `Parameters` resource, what `GET …/$aggregation-report` answers: the
 * totals as top-level integers, then one `type`, `exclusion` and `rootCause` parameter each with its parts.
 * Examples are References to resources on the endpoint; an exclusion about references has a `target` part
 * per referenced type.
 */
type Parameter = { name: string; [value: string]: unknown };

const counts = (c: ReportCounts): Parameter[] => (['included', 'excluded', 'deleted', 'pending', 'parked'] as const).map((name) => ({ name, valueInteger: c[name] }));
const examples = (refs: string[]): Parameter[] => refs.map((reference) => ({ name: 'example', valueReference: { reference } }));

export function reportParameters(report: AggregationReport): Resource {
  const parameter: Parameter[] = [
    { name: 'endpoint', valueString: report.endpoint },
    { name: 'generated', valueInstant: report.generatedAt },
    ...counts(report.totals),
    ...report.types.map((t) => ({ name: 'type', part: [{ name: 'type', valueCode: t.type }, ...counts(t)] })),
    ...report.exclusions.map((e) => ({
      name: 'exclusion',
      part: [
        { name: 'type', valueCode: e.type },
        { name: 'rule', valueCode: e.rule },
        { name: 'count', valueInteger: e.count },
        { name: 'description', valueString: e.description },
        { name: 'sampleReason', valueString: e.sampleReason },
        ...examples(e.examples),
        ...e.targets.map((t) => ({
          name: 'target',
          part: [
            { name: 'type', valueCode: t.type },
            { name: 'count', valueInteger: t.count },
          ],
        })),
      ],
    })),
    ...report.rootCauses.map((c) => ({
      name: 'rootCause',
      part: [
        { name: 'type', valueCode: c.type },
        { name: 'rule', valueCode: c.rule },
        ...(c.count === null ? [] : [{ name: 'count', valueInteger: c.count }]),
        { name: 'excludedThrough', valueInteger: c.excludedThrough },
        ...(c.asSourceOrganization ? [{ name: 'asSourceOrganization', valueInteger: c.asSourceOrganization }] : []),
        { name: 'summary', valueString: c.summary },
        ...examples(c.examples),
        ...c.cascade.map((s) => ({
          name: 'cascade',
          part: [
            { name: 'type', valueCode: s.type },
            { name: 'count', valueInteger: s.count },
          ],
        })),
      ],
    })),
  ];
  return { resourceType: 'Parameters', parameter };
}
