import { parseDateRange } from '../search/dateRange';
import { relativePatientId } from './ids';
import type { Resource } from './types';

/**
 * The Patients a Group has as members now: the population of a Group-level Bulk Data export
 * (bulkdata export.html#endpoint---group-of-patients, "all members of the specified Group"). A member with
 * `inactive: true` is "no longer in the group" and one whose `period` has ended (or not begun) is not in it at
 * this time (R4 Group.member), so neither counts. Each date is the whole interval its precision implies
 * (`2020` ends with 2020). A member that is another Group is not expanded: only Patient references count.
 */
export function currentPatientMembers(group: Resource, now: Date): string[] {
  const members = Array.isArray(group.member) ? (group.member as Member[]) : [];
  const ids = new Set<string>();
  for (const member of members) {
    if (member.inactive === true || !within(member.period, now)) continue;
    const id = relativePatientId(member.entity?.reference ?? '');
    if (id) ids.add(id);
  }
  return [...ids];
}

interface Member {
  entity?: { reference?: string };
  period?: { start?: string; end?: string };
  inactive?: boolean;
}

function within(period: Member['period'], now: Date): boolean {
  const start = period?.start ? parseDateRange(period.start) : undefined;
  const end = period?.end ? parseDateRange(period.end) : undefined;
  return (!start || start.low <= now) && (!end || now <= end.high);
}
