import type { Caller } from '../access/caller';
import type { IssuedToken } from '../access/tokens';
import { badRequest, forbidden } from '../fhir/outcome';
import type { BreakGlass, BreakGlassEvent } from './breakGlass';
import type { ConsentRegistry } from './consentRegistry';
import type { ConsentRecord } from './consentResource';

/**
 * Consent and the patient's own controls for one caller (the GraphQL door's `consent*`, `patientAccess*`
 * and `breakTheGlass` operations). Who may act on whose record is decided here: a patient-scoped caller on
 * their own record only (naming no patient, or themselves), the admin on any record it names, and no one
 * else; break-the-glass is for clinical (non-patient) clients.
 */
export interface PatientAccessView {
  patientId: string;
  frozen: boolean;
  breakGlass: BreakGlassEvent[];
}

export interface PatientControlsFor {
  grant(patient: string | undefined, grantee: string, label: string): Promise<ConsentRecord>;
  revoke(patient: string | undefined, grantee: string, label: string): Promise<boolean>;
  list(patient: string | undefined): Promise<ConsentRecord[]>;
  withdrawAll(patient: string | undefined): Promise<ConsentRecord[]>;
  setFrozen(patient: string | undefined, frozen: boolean): Promise<PatientAccessView>;
  access(patient: string | undefined): Promise<PatientAccessView>;
  breakTheGlass(patient: string, reason: string): Promise<IssuedToken & { breakGlass: BreakGlassEvent }>;
}

export class PatientControls {
  constructor(private readonly deps: { consents: ConsentRegistry; breakGlass: BreakGlass }) {}

  for(caller: Caller): PatientControlsFor {
    const { consents, breakGlass } = this.deps;
    const patientOf = (named: string | undefined): string => {
      if (caller.admin) {
        if (!named) throw badRequest("'patient' is required for the admin", 'patient');
        return named;
      }
      if (!caller.patientId) throw forbidden("Only the patient (a patient-scoped token) or the admin may manage a patient's consents and access");
      if (named && named.replace(/^Patient\//, '') !== caller.patientId) throw forbidden("A patient may manage only their own record's consents and access");
      return caller.patientId;
    };
    const view = async (patientId: string): Promise<PatientAccessView> => ({ ...(await consents.accessSettings(patientId)), breakGlass: await breakGlass.list(patientId) });
    return {
      grant: (patient, grantee, label) => consents.grant({ patientId: patientOf(patient), grantee, label }, caller),
      revoke: async (patient, grantee, label) => (await consents.revoke({ patientId: patientOf(patient), grantee, label }, caller)).revoked,
      list: (patient) => consents.list({ patientId: patientOf(patient) }),
      withdrawAll: (patient) => consents.withdrawAll(patientOf(patient), caller),
      setFrozen: async (patient, frozen) => {
        const patientId = patientOf(patient);
        await consents.setFrozen(patientId, frozen, caller);
        return view(patientId);
      },
      access: async (patient) => view(patientOf(patient)),
      breakTheGlass: (patient, reason) => breakGlass.assert(caller, patient, reason),
    };
  }
}
