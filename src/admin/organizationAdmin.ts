import { badRequest, conflict, notFound } from '../fhir/outcome';
import type { OrganizationRecord, OrganizationRepository, PractitionerRecord, TeamChanges, TeamRecord } from '../store/organizationRepository';
import type { CustomerRecord } from '../store/tenancyRepository';
import { aliasField, idField, nameField, onlyFields, optionalId, type Untrusted } from './adminInput';

/**
 * The admin operations on who acts inside a customer (issue 13): organisations, teams, practitioners and
 * team membership, for every admin door (REST and so the CLI, GraphQL), with their validation here once.
 * Also decides which organisation, team or practitioner a new API client acts for (`clientBinding`).
 * Disabling is for good, like revoking a client: tokens already issued in the name of what was disabled
 * are refused from the next request on (src/access/revokedClients.ts).
 */
export interface OrganizationFields {
  customerId: string;
  name: string;
}

export interface TeamFields {
  organizationId: string;
  name: string;
  alias: string | null;
}

export interface TeamUpdateFields {
  name: string;
  alias: string | null;
}

export interface PractitionerFields {
  organizationId: string;
  name: string;
}

export interface TeamMemberFields {
  practitionerId: string;
}

/** Whom a client acts for: always an organisation, at most one of its teams or practitioners. */
export interface ClientBinding {
  customerId: string;
  organizationId: string;
  teamId: string | null;
  practitionerId: string | null;
}

export interface ClientBindingFields {
  customerId: string;
  organizationId: string;
  teamId: string;
  practitionerId: string;
}

export class OrganizationAdmin {
  constructor(
    private readonly repository: OrganizationRepository,
    private readonly customer: (id: string) => Promise<CustomerRecord | null>,
  ) {}

  // Organisations

  /** A new organisation of a customer, with its default team. */
  async createOrganization(input: Untrusted<OrganizationFields>): Promise<OrganizationRecord> {
    onlyFields(input, ['customerId', 'name']);
    const customerId = idField(input.customerId, 'customerId');
    const name = nameField(input.name, 'name', true) as string;
    await this.requireCustomer(customerId);
    return this.repository.createOrganization({ customerId, name });
  }

  async getOrganization(id: unknown): Promise<OrganizationRecord> {
    const organizationId = idField(id, 'organizationId');
    const organization = await this.repository.getOrganization(organizationId);
    if (!organization) throw notFound(`No organization '${organizationId}'`);
    return organization;
  }

  /** All organisations, or one customer's (404 for an unknown customer). */
  async listOrganizations(customerId?: unknown): Promise<OrganizationRecord[]> {
    const customer = optionalId(customerId, 'customerId');
    if (customer !== undefined) await this.requireCustomer(customer);
    return this.repository.listOrganizations(customer);
  }

  async updateOrganization(id: unknown, input: Untrusted<{ name: string }>): Promise<OrganizationRecord> {
    const organizationId = idField(id, 'organizationId');
    onlyFields(input, ['name']);
    const name = nameField(input.name, 'name', true) as string;
    const organization = await this.repository.updateOrganization(organizationId, { name });
    if (!organization) throw notFound(`No organization '${organizationId}'`);
    return organization;
  }

  /** Its clients get no tokens, and tokens issued for it are refused from the next request on. */
  async disableOrganization(id: unknown): Promise<OrganizationRecord> {
    const organizationId = idField(id, 'organizationId');
    const organization = await this.repository.disableOrganization(organizationId);
    if (!organization) throw notFound(`No organization '${organizationId}'`);
    return organization;
  }

  // Teams

  async createTeam(input: Untrusted<TeamFields>): Promise<TeamRecord> {
    onlyFields(input, ['organizationId', 'name', 'alias']);
    const organizationId = idField(input.organizationId, 'organizationId');
    const name = nameField(input.name, 'name', true) as string;
    const alias = aliasField(input.alias);
    await this.requireActiveOrganization(organizationId);
    if (alias !== null) await this.requireFreeAlias(organizationId, alias);
    return aliasTaken(this.repository.createTeam({ organizationId, name, alias }), organizationId, alias);
  }

  async getTeam(id: unknown): Promise<TeamRecord> {
    const teamId = idField(id, 'teamId');
    const team = await this.repository.getTeam(teamId);
    if (!team) throw notFound(`No team '${teamId}'`);
    return team;
  }

  async listTeams(organizationId?: unknown): Promise<TeamRecord[]> {
    const organization = optionalId(organizationId, 'organizationId');
    if (organization !== undefined) await this.getOrganization(organization);
    return this.repository.listTeams(organization);
  }

  /** Changes what is given; `alias: null` clears the alias. */
  async updateTeam(id: unknown, input: Untrusted<TeamUpdateFields>): Promise<TeamRecord> {
    const teamId = idField(id, 'teamId');
    onlyFields(input, ['name', 'alias']);
    const changes: TeamChanges = {};
    if (input.name !== undefined) changes.name = nameField(input.name, 'name', true) as string;
    if (input.alias !== undefined) changes.alias = aliasField(input.alias);
    if (Object.keys(changes).length === 0) throw badRequest('Nothing to change: give name, alias', ['name', 'alias']);
    const team = await this.getTeam(teamId);
    if (changes.alias && changes.alias !== team.alias) await this.requireFreeAlias(team.organizationId, changes.alias);
    return (await aliasTaken(this.repository.updateTeam(teamId, changes), team.organizationId, changes.alias ?? null)) as TeamRecord;
  }

  async disableTeam(id: unknown): Promise<TeamRecord> {
    const teamId = idField(id, 'teamId');
    const team = await this.repository.disableTeam(teamId);
    if (!team) throw notFound(`No team '${teamId}'`);
    return team;
  }

  /** A practitioner joins a team of its own organisation. */
  async addTeamMember(teamId: unknown, input: Untrusted<TeamMemberFields>): Promise<TeamRecord> {
    const { team, practitionerId } = await this.membership(teamId, input);
    return (await this.repository.addTeamMember(team.id, practitionerId)) as TeamRecord;
  }

  async removeTeamMember(teamId: unknown, input: Untrusted<TeamMemberFields>): Promise<TeamRecord> {
    const { team, practitionerId } = await this.membership(teamId, input);
    return (await this.repository.removeTeamMember(team.id, practitionerId)) as TeamRecord;
  }

  // Practitioners

  async createPractitioner(input: Untrusted<PractitionerFields>): Promise<PractitionerRecord> {
    onlyFields(input, ['organizationId', 'name']);
    const organizationId = idField(input.organizationId, 'organizationId');
    const name = nameField(input.name, 'name', true) as string;
    await this.requireActiveOrganization(organizationId);
    return this.repository.createPractitioner({ organizationId, name });
  }

  async getPractitioner(id: unknown): Promise<PractitionerRecord> {
    const practitionerId = idField(id, 'practitionerId');
    const practitioner = await this.repository.getPractitioner(practitionerId);
    if (!practitioner) throw notFound(`No practitioner '${practitionerId}'`);
    return practitioner;
  }

  async listPractitioners(organizationId?: unknown): Promise<PractitionerRecord[]> {
    const organization = optionalId(organizationId, 'organizationId');
    if (organization !== undefined) await this.getOrganization(organization);
    return this.repository.listPractitioners(organization);
  }

  async updatePractitioner(id: unknown, input: Untrusted<{ name: string }>): Promise<PractitionerRecord> {
    const practitionerId = idField(id, 'practitionerId');
    onlyFields(input, ['name']);
    const name = nameField(input.name, 'name', true) as string;
    const practitioner = await this.repository.updatePractitioner(practitionerId, { name });
    if (!practitioner) throw notFound(`No practitioner '${practitionerId}'`);
    return practitioner;
  }

  async disablePractitioner(id: unknown): Promise<PractitionerRecord> {
    const practitionerId = idField(id, 'practitionerId');
    const practitioner = await this.repository.disablePractitioner(practitionerId);
    if (!practitioner) throw notFound(`No practitioner '${practitionerId}'`);
    return practitioner;
  }

  // Clients

  /**
   * Whom a new client acts for: `organizationId` (default: its customer's default organisation; the customer
   * may then be left out), and at most one of `teamId`, `practitionerId`, which must belong to that
   * organisation. Nothing disabled may be bound.
   */
  async clientBinding(input: Untrusted<ClientBindingFields>): Promise<ClientBinding> {
    const givenCustomer = optionalId(input.customerId, 'customerId');
    const givenOrganization = optionalId(input.organizationId, 'organizationId');
    const teamId = optionalId(input.teamId, 'teamId') ?? null;
    const practitionerId = optionalId(input.practitionerId, 'practitionerId') ?? null;
    if (givenCustomer === undefined && givenOrganization === undefined) throw badRequest(`'customerId' or 'organizationId' is required`, ['customerId', 'organizationId']);
    if (teamId !== null && practitionerId !== null)
      throw badRequest(`Bind a client to a team or to a practitioner, not both: give 'teamId' or 'practitionerId'`, ['teamId', 'practitionerId']);

    let organizationId = givenOrganization;
    if (organizationId === undefined) {
      const customer = await this.requireCustomer(givenCustomer as string);
      if (!customer.defaultOrganizationId) throw conflict(`Customer '${customer.id}' has no default organization: give 'organizationId'`);
      organizationId = customer.defaultOrganizationId;
    }
    const organization = await this.requireActiveOrganization(organizationId);
    if (givenCustomer !== undefined && organization.customerId !== givenCustomer) {
      if (!(await this.customer(givenCustomer))) throw notFound(`No customer '${givenCustomer}'`);
      throw badRequest(`Organization '${organization.id}' is not an organization of customer '${givenCustomer}'`, 'organizationId');
    }
    if (teamId !== null) {
      const team = await this.getTeam(teamId);
      if (team.organizationId !== organization.id) throw badRequest(`Team '${teamId}' is not a team of the client's organization '${organization.id}'`, 'teamId');
      if (team.disabledAt) throw conflict(`Team '${teamId}' is disabled`);
    }
    if (practitionerId !== null) {
      const practitioner = await this.getPractitioner(practitionerId);
      if (practitioner.organizationId !== organization.id) {
        throw badRequest(`Practitioner '${practitionerId}' is not a practitioner of the client's organization '${organization.id}'`, 'practitionerId');
      }
      if (practitioner.disabledAt) throw conflict(`Practitioner '${practitionerId}' is disabled`);
    }
    return { customerId: organization.customerId, organizationId: organization.id, teamId, practitionerId };
  }

  private async membership(id: unknown, input: Untrusted<TeamMemberFields>): Promise<{ team: TeamRecord; practitionerId: string }> {
    const team = await this.getTeam(id);
    onlyFields(input, ['practitionerId']);
    const practitioner = await this.getPractitioner(input.practitionerId);
    if (practitioner.organizationId !== team.organizationId) {
      throw badRequest(`Practitioner '${practitioner.id}' is not a practitioner of organization '${team.organizationId}' of team '${team.id}'`, 'practitionerId');
    }
    return { team, practitionerId: practitioner.id };
  }

  private async requireCustomer(customerId: string): Promise<CustomerRecord> {
    const customer = await this.customer(customerId);
    if (!customer) throw notFound(`No customer '${customerId}'`);
    return customer;
  }

  private async requireActiveOrganization(organizationId: string): Promise<OrganizationRecord> {
    const organization = await this.getOrganization(organizationId);
    if (organization.disabledAt) throw conflict(`Organization '${organizationId}' is disabled`);
    return organization;
  }

  private async requireFreeAlias(organizationId: string, alias: string): Promise<void> {
    if (await this.repository.teamByAlias(organizationId, alias)) throw conflict(`Organization '${organizationId}' already has a team with alias '${alias}'`);
  }
}

/** Two admins giving the same alias at once: the unique index decides, and the loser gets the same 409. */
async function aliasTaken<T>(write: Promise<T>, organizationId: string, alias: string | null): Promise<T> {
  try {
    return await write;
  } catch (err) {
    if ((err as { code?: string }).code === 'P2002') throw conflict(`Organization '${organizationId}' already has a team with alias '${alias}'`);
    throw err;
  }
}
