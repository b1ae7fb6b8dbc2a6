import type { DocumentNode } from 'graphql';

/**
 * Parsed and validated `$graphql` documents by schema and query text, least recently used out first.
 *
 * Validating against the FHIR schema costs more than executing a typical query (about 1.3 ms for the
 * patient-record query, most of it KnownTypeNamesRule listing the ~3,500 type names on every call), and
 * clients send the same few queries with different variables. Apollo keeps a store of its own for
 * /graphql; this is the same for the FHIR operation. Only valid documents are kept, and only short
 * queries, so the cache stays small whatever is sent.
 */
export class DocumentCache {
  private readonly entries = new Map<string, DocumentNode>();

  constructor(
    private readonly maxEntries = 200,
    private readonly maxQueryLength = 10_000,
  ) {}

  get(schemaKey: string, query: string): DocumentNode | undefined {
    const key = `${schemaKey}\n${query}`;
    const document = this.entries.get(key);
    if (document) {
      // Most recently used last: Map keeps insertion order.
      this.entries.delete(key);
      this.entries.set(key, document);
    }
    return document;
  }

  set(schemaKey: string, query: string, document: DocumentNode): void {
    if (query.length > this.maxQueryLength) return;
    this.entries.set(`${schemaKey}\n${query}`, document);
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }
}
