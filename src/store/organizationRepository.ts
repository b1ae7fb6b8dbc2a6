import { randomUUID } from 'node:crypto';
import type { PrismaClient } from '../generated/prisma/client';
import { newId } from './newId';

/**
 * Who acts inside a customer (issue 13): its organisations, their teams and practitioners, and which
 * practitioners belong to which teams, as stored. Inputs arrive validated by the admin service
 * (src/admin/organizationAdmin.ts). Nothing is deleted: disabling stamps `disabledAt`, and the listeners
 * (the authorisation point's set of stopped ids) learn of it once it is committed.
 */
export interface OrganizationRecord {
  id: string;
  customerId: string;
  name: string;
  /** How the legacy family names the organisation (X-Org-Public-Id). */
  publicId: string;
  defaultTeamId: string | null;
  disabledAt: Date | null;
  createdAt: Date;
}

export interface TeamRecord {
  id: string;
  organizationId: string;
  name: string;
  alias: string | null;
  /** Its practitioners' ids. */
  practitionerIds: string[];
  disabledAt: Date | null;
  createdAt: Date;
}

export interface PractitionerRecord {
  id: string;
  organizationId: string;
  name: string;
  /** The teams it belongs to. */
  teamIds: string[];
  disabledAt: Date | null;
  createdAt: Date;
}

/** The fields to change; absent ones are left as they are, `null` clears (a team's alias). */
export interface TeamChanges {
  name?: string;
  alias?: string | null;
}

type OrganizationPrisma = Pick<PrismaClient, 'organization' | 'team' | 'practitioner' | 'teamMember' | 'customer' | '$transaction'>;

const ORGANIZATION = { id: true, customerId: true, name: true, publicId: true, defaultTeamId: true, disabledAt: true, createdAt: true } as const;
const TEAM = { id: true, organizationId: true, name: true, alias: true, disabledAt: true, createdAt: true, members: { select: { practitionerId: true } } } as const;
const PRACTITIONER = { id: true, organizationId: true, name: true, disabledAt: true, createdAt: true, teams: { select: { teamId: true } } } as const;
const ORDER = [{ createdAt: 'asc' as const }, { id: 'asc' as const }];

function toTeam({ members, ...row }: { members: { practitionerId: string }[] } & Omit<TeamRecord, 'practitionerIds'>): TeamRecord {
  return { ...row, practitionerIds: members.map((m) => m.practitionerId).sort() };
}

function toPractitioner({ teams, ...row }: { teams: { teamId: string }[] } & Omit<PractitionerRecord, 'teamIds'>): PractitionerRecord {
  return { ...row, teamIds: teams.map((t) => t.teamId).sort() };
}

export class OrganizationRepository {
  constructor(
    private readonly prisma: OrganizationPrisma,
    /** Told each id (organisation, team, practitioner) once its disabling is committed. */
    private readonly disabledListeners: ((id: string) => Promise<void> | void)[],
  ) {}

  /**
   * An organisation with its default team, in one transaction; `asCustomerDefault` also makes it the
   * organisation the customer's clients act for unless told otherwise.
   */
  async createOrganization(input: { customerId: string; name: string }, asCustomerDefault = false): Promise<OrganizationRecord> {
    const { id, writes } = this.organizationWrites(input, asCustomerDefault);
    await this.prisma.$transaction(writes);
    return (await this.getOrganization(id)) as OrganizationRecord;
  }

  /** The statements that create an organisation and its default team, for a transaction of the caller's. */
  organizationWrites(input: { customerId: string; name: string }, asCustomerDefault: boolean) {
    const id = newId('org');
    const teamId = newId('team');
    const writes = [
      this.prisma.organization.create({ data: { id, customerId: input.customerId, name: input.name, publicId: randomUUID() }, select: { id: true } }),
      this.prisma.team.create({ data: { id: teamId, organizationId: id, name: 'Default team' }, select: { id: true } }),
      this.prisma.organization.update({ where: { id }, data: { defaultTeamId: teamId }, select: { id: true } }),
      ...(asCustomerDefault ? [this.prisma.customer.update({ where: { id: input.customerId }, data: { defaultOrganizationId: id }, select: { id: true } })] : []),
    ];
    return { id, writes };
  }

  getOrganization(id: string): Promise<OrganizationRecord | null> {
    return this.prisma.organization.findUnique({ where: { id }, select: ORGANIZATION });
  }

  listOrganizations(customerId?: string): Promise<OrganizationRecord[]> {
    return this.prisma.organization.findMany({ where: customerId === undefined ? {} : { customerId }, select: ORGANIZATION, orderBy: ORDER });
  }

  async updateOrganization(id: string, changes: { name?: string }): Promise<OrganizationRecord | null> {
    const { count } = await this.prisma.organization.updateMany({ where: { id }, data: changes });
    return count === 0 ? null : this.getOrganization(id);
  }

  async disableOrganization(id: string): Promise<OrganizationRecord | null> {
    await this.prisma.organization.updateMany({ where: { id, disabledAt: null }, data: { disabledAt: new Date() } });
    return this.disabled(id, await this.getOrganization(id));
  }

  async createTeam(input: { organizationId: string; name: string; alias: string | null }): Promise<TeamRecord> {
    return toTeam(await this.prisma.team.create({ data: { id: newId('team'), ...input }, select: TEAM }));
  }

  async getTeam(id: string): Promise<TeamRecord | null> {
    const row = await this.prisma.team.findUnique({ where: { id }, select: TEAM });
    return row && toTeam(row);
  }

  /** The organisation's team of that alias, if any. */
  async teamByAlias(organizationId: string, alias: string): Promise<TeamRecord | null> {
    const row = await this.prisma.team.findFirst({ where: { organizationId, alias }, select: TEAM });
    return row && toTeam(row);
  }

  async listTeams(organizationId?: string): Promise<TeamRecord[]> {
    return (await this.prisma.team.findMany({ where: organizationId === undefined ? {} : { organizationId }, select: TEAM, orderBy: ORDER })).map(toTeam);
  }

  async updateTeam(id: string, changes: TeamChanges): Promise<TeamRecord | null> {
    const { count } = await this.prisma.team.updateMany({ where: { id }, data: changes });
    return count === 0 ? null : this.getTeam(id);
  }

  async disableTeam(id: string): Promise<TeamRecord | null> {
    await this.prisma.team.updateMany({ where: { id, disabledAt: null }, data: { disabledAt: new Date() } });
    return this.disabled(id, await this.getTeam(id));
  }

  async createPractitioner(input: { organizationId: string; name: string }): Promise<PractitionerRecord> {
    return toPractitioner(await this.prisma.practitioner.create({ data: { id: newId('prac'), ...input }, select: PRACTITIONER }));
  }

  async getPractitioner(id: string): Promise<PractitionerRecord | null> {
    const row = await this.prisma.practitioner.findUnique({ where: { id }, select: PRACTITIONER });
    return row && toPractitioner(row);
  }

  async listPractitioners(organizationId?: string): Promise<PractitionerRecord[]> {
    const rows = await this.prisma.practitioner.findMany({ where: organizationId === undefined ? {} : { organizationId }, select: PRACTITIONER, orderBy: ORDER });
    return rows.map(toPractitioner);
  }

  async updatePractitioner(id: string, changes: { name?: string }): Promise<PractitionerRecord | null> {
    const { count } = await this.prisma.practitioner.updateMany({ where: { id }, data: changes });
    return count === 0 ? null : this.getPractitioner(id);
  }

  async disablePractitioner(id: string): Promise<PractitionerRecord | null> {
    await this.prisma.practitioner.updateMany({ where: { id, disabledAt: null }, data: { disabledAt: new Date() } });
    return this.disabled(id, await this.getPractitioner(id));
  }

  /** Adds a practitioner to a team; adding it twice is harmless. */
  async addTeamMember(teamId: string, practitionerId: string): Promise<TeamRecord | null> {
    await this.prisma.teamMember.upsert({ where: { teamId_practitionerId: { teamId, practitionerId } }, create: { teamId, practitionerId }, update: {} });
    return this.getTeam(teamId);
  }

  async removeTeamMember(teamId: string, practitionerId: string): Promise<TeamRecord | null> {
    await this.prisma.teamMember.deleteMany({ where: { teamId, practitionerId } });
    return this.getTeam(teamId);
  }

  /**
   * Why a client with these bindings may not have tokens: the first of its organisation, team and
   * practitioner that is disabled (or gone), else null.
   */
  async disabledBinding(binding: { organizationId: string | null; teamId: string | null; practitionerId: string | null }): Promise<string | null> {
    const [organization, team, practitioner] = await Promise.all([
      binding.organizationId ? this.prisma.organization.findUnique({ where: { id: binding.organizationId }, select: { disabledAt: true } }) : undefined,
      binding.teamId ? this.prisma.team.findUnique({ where: { id: binding.teamId }, select: { disabledAt: true } }) : undefined,
      binding.practitionerId ? this.prisma.practitioner.findUnique({ where: { id: binding.practitionerId }, select: { disabledAt: true } }) : undefined,
    ]);
    if (organization === null || organization?.disabledAt) return 'organisation';
    if (team === null || team?.disabledAt) return 'team';
    if (practitioner === null || practitioner?.disabledAt) return 'practitioner';
    return null;
  }

  private async disabled<T>(id: string, record: T | null): Promise<T | null> {
    if (record) for (const listener of this.disabledListeners) await listener(id);
    return record;
  }
}
