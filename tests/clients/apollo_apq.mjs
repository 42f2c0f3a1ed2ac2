// Apollo Client's automatic persisted queries: createPersistedQueryLink (sha256 from Node's
// crypto) with useGETForHashedQueries, as a frontend configures it. The first query goes by hash
// only, is not found, and is retried with its document; the second goes by hash only and is
// answered. Every request the link makes is recorded (method, and what it carried).
import { createHash } from 'node:crypto';
import apollo from '@apollo/client/core/core.cjs';
import persisted from '@apollo/client/link/persisted-queries/persisted-queries.cjs';
import dev from '@apollo/client/dev/dev.cjs';
import { args, post, run } from './lib.mjs';

const { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } = apollo;
const { createPersistedQueryLink } = persisted;
const { host, email } = args();
dev.loadDevMessages();
dev.loadErrorMessages();

const sent = [];
async function recordingFetch(url, options) {
  const parsed = new URL(url);
  const body = options.body ? JSON.parse(options.body) : null;
  const params = Object.fromEntries(parsed.searchParams);
  const carried = body || params;
  sent.push({
    method: options.method || 'GET',
    hasDocument: typeof carried.query === 'string' && carried.query.length > 0,
    hash: (JSON.parse(typeof carried.extensions === 'string' ? carried.extensions : JSON.stringify(carried.extensions || {})).persistedQuery || {}).sha256Hash || null,
  });
  return fetch(url, options);
}

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

run(async () => {
  const registered = await post(
    `http://${host}/graphql`,
    `mutation($input: RegisterInput!) { register(input: $input) { accessToken } }`,
    { input: { email, password: 'correct horse battery', displayName: 'APQ User' } },
  );
  const token = registered.register.accessToken;
  const auth = new ApolloLink((operation, forward) => {
    operation.setContext({ headers: { authorization: `Bearer ${token}` } });
    return forward(operation);
  });
  const client = new ApolloClient({
    link: ApolloLink.from([
      auth,
      createPersistedQueryLink({ sha256, useGETForHashedQueries: true }),
      new HttpLink({ uri: `http://${host}/graphql`, fetch: recordingFetch }),
    ]),
    cache: new InMemoryCache(),
  });
  const ME = gql`query Me { viewer { displayName } }`;
  const first = await client.query({ query: ME, fetchPolicy: 'network-only' });
  const afterFirst = sent.length;
  const second = await client.query({ query: ME, fetchPolicy: 'network-only' });
  return {
    first: first.data,
    second: second.data,
    firstRequests: sent.slice(0, afterFirst),
    secondRequests: sent.slice(afterFirst),
  };
});
