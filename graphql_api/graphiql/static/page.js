// GraphiQL for this server: queries and mutations over HTTP, subscriptions over graphql-ws,
// both signed in with the Authorization header typed in GraphiQL's Headers tab (for the
// WebSocket it goes in the connection_init payload, as the server expects).
(function () {
  'use strict';
  const httpUrl = window.location.origin + window.location.pathname;
  const wsUrl = httpUrl.replace(/^http/, 'ws');

  const WELCOME = `# The task tracker's GraphQL API.
#
# 1. Sign in (or use register) and copy the accessToken from the answer:
#
#    mutation { login(input: {email: "alice@example.com", password: "demo-password"}) {
#      accessToken userErrors { code message } } }
#
# 2. In the Headers tab below, send it with every request:
#
#    {"authorization": "Bearer <accessToken>"}
#
# 3. Ask away. Ctrl-Enter runs the query; the Docs button shows the schema.

{
  viewer { displayName email }
  workspaces(first: 10) { nodes { id name slug viewerRole } }
}
`;

  function authorization(headers) {
    for (const [name, value] of Object.entries(headers || {})) {
      if (name.toLowerCase() === 'authorization' && typeof value === 'string') return value;
    }
    return '';
  }

  const { parse, getOperationAST } = GraphiQL.GraphQL;
  function isSubscription(params) {
    try {
      const operation = getOperationAST(parse(params.query), params.operationName || undefined);
      return Boolean(operation) && operation.operation === 'subscription';
    } catch {
      return false; // the server reports the syntax error
    }
  }

  // One WebSocket per Authorization value: a new token in the Headers tab opens a connection
  // signed in with it.
  const wsClients = new Map();
  function wsClient(auth) {
    if (!wsClients.has(auth)) {
      wsClients.set(
        auth,
        graphqlWs.createClient({
          url: wsUrl,
          lazy: true,
          connectionParams: auth ? { authorization: auth } : {},
        }),
      );
    }
    return wsClients.get(auth);
  }

  const httpFetcher = GraphiQL.createFetcher({ url: httpUrl });
  function fetcher(params, options) {
    const headers = (options && options.headers) || {};
    if (isSubscription(params)) return wsClient(authorization(headers)).iterate(params);
    return httpFetcher(params, options);
  }

  // A new tab starts with the headers last typed, so the token need not be pasted again.
  const HEADERS_KEY = 'graphql-api:last-headers';
  function App() {
    const [headers, setHeaders] = React.useState(
      () => window.localStorage.getItem(HEADERS_KEY) || '{"authorization": "Bearer "}',
    );
    const onEditHeaders = React.useCallback((value) => {
      window.localStorage.setItem(HEADERS_KEY, value);
      setHeaders(value);
    }, []);
    const explorer = React.useMemo(() => GraphiQLPluginExplorer.explorerPlugin(), []);
    return React.createElement(GraphiQL, {
      fetcher,
      plugins: [explorer],
      defaultQuery: WELCOME,
      defaultHeaders: headers,
      onEditHeaders,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      inputValueDeprecation: true,
    });
  }

  ReactDOM.createRoot(document.getElementById('graphiql')).render(React.createElement(App));
})();
