import { describeCount, sortedTargets } from '../../src/aggregator/exclusionRules';

/** The report's sentences (exclusionRules.ts): a count, a type and what its rule says; the types referred to where the rule is about a reference. */
test('an exclusion about references names the types referred to, largest first, or the one type alone', () => {
  const targets = sortedTargets(
    new Map([
      ['Location', 1],
      ['Group', 2],
      ['Device', 1],
    ]),
  );
  expect(describeCount(4, 'Observation', 'reference-to-unsupported-type', targets)).toBe(
    '4 Observations refer to a type the aggregation does not support (Group: 2, Device: 1, Location: 1)',
  );
  expect(describeCount(1, 'Observation', 'reference-to-unsupported-type', [{ type: 'Group', count: 1 }])).toBe(
    '1 Observation refers to a type the aggregation does not support (Group)',
  );
  expect(describeCount(1_200, 'Encounter', 'target-not-aggregated', [{ type: 'Organization', count: 1_200 }])).toBe(
    '1,200 Encounters refer to a resource that is not in the aggregated record (Organization)',
  );
});

test('other rules are described without targets, whatever is passed', () => {
  expect(describeCount(40, 'Organization', 'identifier-missing')).toBe('40 Organizations have no identifier');
  expect(describeCount(3, 'Observation', 'source-organization-not-aggregated', [{ type: 'Organization', count: 3 }])).toBe(
    "3 Observations are sourced by the endpoint's default organisation, which is not in the aggregated record",
  );
});
