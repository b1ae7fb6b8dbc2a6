import type { ApolloServerPlugin } from '@apollo/server';

/**
 * `Cache-Control: no-store` on every /graphql response, in place of Apollo's cache-control plugin.
 *
 * That plugin is on unless disabled, and our schema gives no cache hints, so all it ever answered was
 * `no-store`. To compute that it adds a `willResolveField` hook, and any such hook makes Apollo wrap the
 * resolver of every field in the schema and run the hook, with fresh policy objects, for every field of
 * every response: on a patient record that is thousands of calls per request for a constant answer.
 * Patient data must not be stored by caches anyway.
 */
export const noStorePlugin: ApolloServerPlugin = {
  async requestDidStart() {
    return {
      async willSendResponse({ response }) {
        response.http.headers.set('cache-control', 'no-store');
      },
    };
  },
};
