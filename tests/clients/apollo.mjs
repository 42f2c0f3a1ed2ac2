// Apollo Client with its default cache (it adds __typename to every selection) and
// relayStylePagination, over HTTP and graphql-ws, as a React app would use it: sign in, create
// a workspace, a project and tasks, page through them with cursors, update with
// expectedVersion (a stale one is a CONFLICT), and receive a subscription event.
import apollo from '@apollo/client/core/core.cjs';
import utilities from '@apollo/client/utilities/utilities.cjs';
import subscriptions from '@apollo/client/link/subscriptions/subscriptions.cjs';
import dev from '@apollo/client/dev/dev.cjs';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { args, post, run, until } from './lib.mjs';

const { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql, split } = apollo;
const { getMainDefinition, relayStylePagination } = utilities;
const { GraphQLWsLink } = subscriptions;
const { host, email } = args();
dev.loadDevMessages(); // Apollo's warnings in words, in the test's output
dev.loadErrorMessages();
let token = null;

const auth = new ApolloLink((operation, forward) => {
  if (token) operation.setContext({ headers: { authorization: `Bearer ${token}` } });
  return forward(operation);
});
const ws = createClient({
  url: `ws://${host}/graphql`,
  webSocketImpl: WebSocket,
  lazy: true,
  retryAttempts: 0,
  connectionParams: () => ({ authorization: `Bearer ${token}` }),
});
const link = split(
  ({ query }) => {
    const definition = getMainDefinition(query);
    return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
  },
  new GraphQLWsLink(ws),
  auth.concat(new HttpLink({ uri: `http://${host}/graphql` })),
);
const client = new ApolloClient({
  link,
  cache: new InMemoryCache({
    typePolicies: { Project: { fields: { tasks: relayStylePagination(['orderBy']) } } },
  }),
});

const REGISTER = gql`mutation Register($input: RegisterInput!) {
  register(input: $input) { accessToken user { id displayName } userErrors { code message } } }`;
const CREATE_WORKSPACE = gql`mutation CreateWorkspace($name: String!) {
  createWorkspace(input: {name: $name}) { workspace { id slug } userErrors { code message } } }`;
const CREATE_PROJECT = gql`mutation CreateProject($w: ID!) {
  createProject(input: {workspaceId: $w, key: "APL", name: "Apollo"}) { project { id key } userErrors { code message } } }`;
const CREATE_TASK = gql`mutation CreateTask($p: ID!, $title: String!) {
  createTask(input: {projectId: $p, title: $title}) { task { id identifier title version } userErrors { code message } } }`;
const BOARD = gql`query Board($slug: String!, $key: String!, $first: Int!, $after: String) {
  workspace(slug: $slug) { id project(key: $key) { id name
    tasks(first: $first, after: $after, orderBy: {field: NUMBER, direction: ASC}) {
      totalCount
      edges { cursor node { id identifier title status version } }
      pageInfo { hasNextPage endCursor } } } } }`;
const UPDATE_TASK = gql`mutation UpdateTask($id: ID!, $v: Int, $title: String) {
  updateTask(input: {id: $id, expectedVersion: $v, title: $title}) {
    task { id title version } userErrors { code message field } } }`;
const EVENTS = gql`subscription Events($w: ID!) { taskEvents(workspaceId: $w) { kind taskId task { id title } } }`;

async function mutate(mutation, variables) {
  const { data } = await client.mutate({ mutation, variables });
  return data;
}

run(async () => {
  const registered = (
    await mutate(REGISTER, { input: { email, password: 'correct horse battery', displayName: 'Apollo User' } })
  ).register;
  token = registered.accessToken;
  const workspace = (await mutate(CREATE_WORKSPACE, { name: 'Apollo Team' })).createWorkspace.workspace;
  const project = (await mutate(CREATE_PROJECT, { w: workspace.id })).createProject.project;
  const created = [];
  for (let i = 1; i <= 5; i += 1) {
    created.push((await mutate(CREATE_TASK, { p: project.id, title: `Task ${i}` })).createTask.task);
  }

  // Pages of two, merged by relayStylePagination in the cache.
  const variables = { slug: workspace.slug, key: 'APL', first: 2 };
  const watch = client.watchQuery({ query: BOARD, variables });
  let result = await new Promise((resolve, reject) => {
    watch.subscribe({ next: (r) => r.loading || resolve(r), error: reject });
  });
  const pages = [result.data.workspace.project.tasks.edges.length];
  while (result.data.workspace.project.tasks.pageInfo.hasNextPage) {
    const after = result.data.workspace.project.tasks.pageInfo.endCursor;
    await watch.fetchMore({ variables: { ...variables, after } });
    result = watch.getCurrentResult();
    pages.push(result.data.workspace.project.tasks.edges.length);
  }
  const paged = result.data.workspace.project.tasks.edges.map((e) => e.node.identifier);
  // The same document as written (Apollo sends it with __typename added), as one page.
  const plain = await post(`http://${host}/graphql`, BOARD.loc.source.body, { ...variables, first: 5 }, token);

  // Optimistic concurrency: the current version succeeds, the same (now stale) one conflicts.
  const first = created[0];
  const updated = (await mutate(UPDATE_TASK, { id: first.id, v: first.version, title: 'Renamed once' })).updateTask;
  const stale = (await mutate(UPDATE_TASK, { id: first.id, v: first.version, title: 'Lost update' })).updateTask;
  // The cache holds the normalised task: Apollo updated it from the mutation's payload.
  const cached = client.readFragment({ id: `Task:${first.id}`, fragment: gql`fragment T on Task { title version }` });

  // A subscription through the same client; events written by a plain HTTP request.
  const events = [];
  const subscription = client.subscribe({ query: EVENTS, variables: { w: workspace.id } }).subscribe({
    next: ({ data }) => events.push(data.taskEvents),
    error: (error) => events.push({ error: String(error) }),
  });
  let n = 0;
  await until(async () => {
    n += 1;
    await mutate(CREATE_TASK, { p: project.id, title: `Live ${n}` });
    return events.length > 0;
  }, 'a subscription event through Apollo');
  subscription.unsubscribe();
  await ws.dispose();

  return {
    workspace,
    project,
    pages,
    paged,
    totalCount: result.data.workspace.project.tasks.totalCount,
    apolloBoard: result.data,
    plainBoard: plain,
    updated,
    stale,
    cached,
    event: events[0],
  };
});
