import { OperationOutcomeError } from '../fhir/outcome';
import type { Bundle, Resource } from '../fhir/types';
import { FhirService, type FhirServiceDeps, type StoreBinding, type WriteOutcome } from '../service/fhirService';
import type { HistoryOptions, HistoryPage, StoredVersion, Tx } from '../store/resourceRepository';
import { type AuditActivity, type AuditSubtype, bundleResources } from './auditEvent';
import type { AuditSink } from './auditLog';

type Ref = NonNullable<AuditActivity['resources']>[number];
const ref = (s: StoredVersion): Ref => ({ type: s.type, id: s.id, versionId: s.versionId });

/**
 * A FhirService whose every interaction leaves an audit event (BALP, auditEvent.ts): what it returned or
 * wrote on success, the status and reason on failure (a 403 scope refusal, a 404). The authorisation point
 * builds these when AUDIT is on, so no door can reach the store unaudited. The response waits for the event
 * to be durable; if it cannot be written the interaction fails with the log's 503 instead of its result.
 *
 * Inside a transaction (Bundle entries, conditional writes) the events are held until it ends — the audit
 * log writes on another connection, which the embedded store's single connection would not give while the
 * transaction holds it — and then recorded; if the transaction rolled back, its entries that had succeeded
 * are recorded as failed with it.
 */
export class AuditedFhirService extends FhirService {
  constructor(
    private readonly serviceDeps: FhirServiceDeps,
    binding: StoreBinding,
    private readonly audit: AuditSink,
    tx?: Tx,
    /** Events of the enclosing transaction, recorded when it ends. */
    private readonly held?: AuditActivity[],
  ) {
    super(serviceDeps, binding, tx);
  }

  override inTransaction(tx: Tx): FhirService {
    return new AuditedFhirService(this.serviceDeps, this.binding, this.audit, tx, this.held ?? []);
  }

  override async transaction<T>(fn: (service: FhirService, tx: Tx) => Promise<T>, items = 1): Promise<T> {
    if (this.held) return super.transaction((_svc, tx) => fn(this.inTransaction(tx), tx), items);
    const held: AuditActivity[] = [];
    let result: T;
    try {
      result = await super.transaction((_svc, tx) => fn(new AuditedFhirService(this.serviceDeps, this.binding, this.audit, tx, held), tx), items);
    } catch (err) {
      for (const a of held) {
        if ((a.status ?? 200) < 400) Object.assign(a, { status: statusOf(err), detail: `rolled back with its transaction: ${err instanceof Error ? err.message : 'failed'}` });
      }
      await this.recordAll(held);
      throw err;
    }
    await this.recordAll(held);
    return result;
  }

  private async recordAll(held: AuditActivity[]): Promise<void> {
    await Promise.all(held.map((a) => this.audit.record(a)));
  }

  /** Runs `interaction`, then records its event (success: `returned` of its result; failure: its status). */
  private async audited<T>(subtype: AuditSubtype, what: Partial<AuditActivity>, interaction: () => Promise<T>, returned: (result: T) => Partial<AuditActivity>): Promise<T> {
    let result: T;
    try {
      result = await interaction();
    } catch (err) {
      await this.note({ subtype, ...what, status: statusOf(err), detail: err instanceof Error ? err.message : undefined });
      throw err;
    }
    await this.note({ subtype, ...what, ...returned(result) });
    return result;
  }

  private async note(activity: AuditActivity): Promise<void> {
    const full: AuditActivity = { ...activity, caller: this.binding.caller, store: this.binding.store };
    if (this.held) this.held.push(full);
    else await this.audit.record(full);
  }

  override read(type: string, id: string): Promise<StoredVersion> {
    return this.audited(
      'read',
      { type, resources: [{ type, id }] },
      () => super.read(type, id),
      (s) => ({ resources: [ref(s)] }),
    );
  }

  override vread(type: string, id: string, versionId: string): Promise<StoredVersion> {
    return this.audited(
      'vread',
      { type, resources: [{ type, id, versionId }] },
      () => super.vread(type, id, versionId),
      (s) => ({ resources: [ref(s)] }),
    );
  }

  override create(type: string, body: unknown, options: { ifNoneExist?: string } = {}): Promise<WriteOutcome> {
    return this.audited(
      'create',
      { type },
      () => super.create(type, body, options),
      (w) => ({ subtype: w.created ? 'create' : 'read', resources: [ref(w.stored)] }),
    );
  }

  override createMany(resources: { type: string; id: string; body: unknown }[], onInvalid?: (index: number) => void): Promise<StoredVersion[]> {
    return this.audited(
      'create',
      { type: resources[0]?.type },
      () => super.createMany(resources, onInvalid),
      (stored) => ({ resources: stored.map(ref) }),
    );
  }

  override update(type: string, id: string, body: unknown, options: { ifMatch?: number } = {}): Promise<WriteOutcome> {
    return this.audited(
      'update',
      { type, resources: [{ type, id }] },
      () => super.update(type, id, body, options),
      (w) => ({ subtype: w.created ? 'create' : 'update', resources: [ref(w.stored)] }),
    );
  }

  override conditionalUpdate(type: string, query: [string, string][], body: unknown, options: { ifMatch?: number } = {}): Promise<WriteOutcome> {
    return this.audited(
      'update',
      { type, query },
      () => super.conditionalUpdate(type, query, body, options),
      (w) => ({ subtype: w.created ? 'create' : 'update', resources: [ref(w.stored)] }),
    );
  }

  override patch(type: string, id: string, body: unknown, options: { ifMatch?: number } = {}): Promise<WriteOutcome> {
    return this.audited(
      'patch',
      { type, resources: [{ type, id }] },
      () => super.patch(type, id, body, options),
      (w) => ({ resources: [ref(w.stored)] }),
    );
  }

  override delete(type: string, id: string): Promise<StoredVersion | undefined> {
    return this.audited(
      'delete',
      { type, resources: [{ type, id }] },
      () => super.delete(type, id),
      (s) => ({ resources: [s ? ref(s) : { type, id }] }),
    );
  }

  override conditionalDelete(type: string, query: [string, string][]): Promise<StoredVersion | undefined> {
    return this.audited(
      'delete',
      { type, query },
      () => super.conditionalDelete(type, query),
      (s) => ({ resources: s ? [ref(s)] : [] }),
    );
  }

  override history(scope: { type?: string; id?: string }, options: HistoryOptions): Promise<HistoryPage> {
    const subtype: AuditSubtype = scope.id ? 'history-instance' : scope.type ? 'history-type' : 'history-system';
    const asked = scope.type && scope.id ? [{ type: scope.type, id: scope.id }] : [];
    return this.audited(
      subtype,
      { type: scope.type, resources: asked },
      () => super.history(scope, options),
      (page) => ({ resources: page.entries.map(ref) }),
    );
  }

  override search(type: string | undefined, params: [string, string][], options: { baseUrl: string; handling?: 'strict' | 'lenient' }): Promise<Bundle> {
    return this.audited(
      type ? 'search-type' : 'search-system',
      { type, query: params },
      () => super.search(type, params, options),
      (b) => ({ resources: bundleResources(b) }),
    );
  }

  /** GraphQL reference resolution: reads, audited as one read event naming every resource returned. */
  override readMany(type: string, ids: string[], baseUrl: string): Promise<Resource[]> {
    return this.audited(
      'read',
      { type, resources: ids.map((id) => ({ type, id })) },
      () => super.readMany(type, ids, baseUrl),
      (rs) => ({ resources: rs.map((r) => ({ type: r.resourceType, id: r.id as string })) }),
    );
  }
}

function statusOf(err: unknown): number {
  if (err instanceof OperationOutcomeError) return err.status;
  const nested = (err as { outcomeError?: unknown }).outcomeError;
  return nested instanceof OperationOutcomeError ? nested.status : 500;
}
