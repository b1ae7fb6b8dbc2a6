import { ApolloClient, HttpLink, InMemoryCache, type DocumentNode } from '@apollo/client/core';

/** A real GraphQL client (Apollo Client) against the server's /graphql, with a tenant's token. */
export function graphqlClient(url: string, token: string) {
  const client = new ApolloClient({
    link: new HttpLink({ uri: `${url}/graphql`, headers: { authorization: `Bearer ${token}` }, fetch }),
    cache: new InMemoryCache({ addTypename: false }),
    defaultOptions: { query: { fetchPolicy: 'no-cache', errorPolicy: 'all' }, mutate: { fetchPolicy: 'no-cache', errorPolicy: 'all' } },
  });
  return {
    query: <T = Record<string, any>>(query: DocumentNode, variables?: Record<string, unknown>) => client.query<T>({ query, variables }),
    mutate: <T = Record<string, any>>(mutation: DocumentNode, variables?: Record<string, unknown>) => client.mutate<T>({ mutation, variables }),
  };
}
