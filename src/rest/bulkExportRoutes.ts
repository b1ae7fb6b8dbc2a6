import { createReadStream } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OperationOutcomeError, operationOutcome } from '../fhir/outcome';
import { type BulkExport, manifestFiles } from '../service/bulkExport';
import type { ExportOutput } from '../store/exportJobRepository';
import type { FhirService } from '../service/fhirService';
import { sendOutcome } from './fastifyFhir';

/**
 * The Bulk Data status and file URLs (bulkdata export.html#bulk-data-status-request): not FHIR resources,
 * so they are plain Fastify routes beside the aggregated endpoint. Each authenticates the caller as the
 * aggregated endpoint does (`serviceOf`); a job is its client's only, and another's reads as missing. The
 * token asking may carry fewer scopes than the one that started the job: the service checks them (bulkExport.ts).
 */
export interface BulkExportMount {
  /** The aggregated endpoint's Fastify prefix and absolute base URL. */
  prefix: string;
  baseUrl: string;
  bulk: BulkExport;
  /** The aggregated-endpoint service of an authorised caller (401/403 otherwise): its client owns jobs, its scopes gate them. */
  serviceOf(request: FastifyRequest): Promise<FhirService>;
}

export function mountBulkExport(app: FastifyInstance, mount: BulkExportMount): void {
  const guarded =
    (handler: (request: FastifyRequest<{ Params: Record<string, string> }>, reply: FastifyReply, service: FhirService) => Promise<FastifyReply>) =>
    async (request: FastifyRequest<{ Params: Record<string, string> }>, reply: FastifyReply) => {
      try {
        return await handler(request, reply, await mount.serviceOf(request));
      } catch (err) {
        if (err instanceof OperationOutcomeError) return sendOutcome(reply, err, 'application/fhir+json');
        throw err;
      }
    };

  app.get(
    `${mount.prefix}/$export-status/:id`,
    guarded(async (request, reply, service) => {
      const job = await mount.bulk.status(service, request.params.id);
      if (job.status === 'in-progress')
        return reply
          .status(202)
          .headers({ 'X-Progress': job.progress ?? 'started', 'Retry-After': '1' })
          .send();
      if (job.status === 'failed') {
        const outcome = operationOutcome([{ severity: 'error', code: 'exception', diagnostics: `The export failed: ${job.error}` }]);
        return reply.status(500).type('application/fhir+json; charset=utf-8').send(JSON.stringify(outcome));
      }
      const files = manifestFiles(job);
      const item = (o: ExportOutput) => ({ type: o.type, url: `${mount.baseUrl}/$export-file/${job.id}/${o.file}`, count: o.count });
      const manifest = {
        transactionTime: job.transactionTime.toISOString(),
        request: job.request,
        requiresAccessToken: true,
        output: files.output.map(item),
        error: files.error.map(item),
      };
      return reply.status(200).headers({ Expires: job.expiresAt.toUTCString() }).type('application/json; charset=utf-8').send(JSON.stringify(manifest));
    }),
  );

  app.delete(
    `${mount.prefix}/$export-status/:id`,
    guarded(async (request, reply, service) => {
      await mount.bulk.cancel(service, request.params.id);
      return reply.status(202).send();
    }),
  );

  app.get(
    `${mount.prefix}/$export-file/:id/:file`,
    guarded(async (request, reply, service) => {
      const file = await mount.bulk.file(service, request.params.id, request.params.file);
      return reply.status(200).type('application/fhir+ndjson').send(createReadStream(file));
    }),
  );
}
