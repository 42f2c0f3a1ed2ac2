// The npm graphql-ws client, as Apollo, urql, Relay and GraphiQL use it: signed in through
// connectionParams, subscribed on one server process while the writes go through another.
// Prints the events of one task's life: CREATED, UPDATED, DELETED, RESTORED.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { args, createTask, post, run, until } from './lib.mjs';

const { subscribeHost, writeHost, token, workspaceId, projectId } = args();
const writeUrl = `http://${writeHost}/graphql`;

const EVENTS = `subscription($w: ID!, $p: ID) {
  taskEvents(workspaceId: $w, projectId: $p) { kind taskId actor { displayName } task { identifier title } }
}`;

run(async () => {
  const closes = [];
  const client = createClient({
    url: `ws://${subscribeHost}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    on: { closed: (event) => closes.push(event.code) },
  });
  const received = [];
  const failures = [];
  const unsubscribe = client.subscribe(
    { query: EVENTS, variables: { w: workspaceId, p: projectId } },
    {
      next: (result) => received.push(result),
      error: (error) => failures.push(String(error && (error.reason || error.message || error.code || JSON.stringify(error)))),
      complete: () => {},
    },
  );
  try {
    // The subscribe message and the server's listener are asynchronous: write until an event
    // shows that the subscription is live, then let the stragglers arrive.
    let n = 0;
    await until(async () => {
      if (failures.length) throw new Error(`subscription failed: ${failures} (closes ${closes})`);
      n += 1;
      await createTask(writeUrl, token, projectId, `sync ${n}`);
      return received.length > 0;
    }, 'the subscription to deliver', 50, 200);
    await until(async () => {
      const before = received.length;
      await new Promise((r) => setTimeout(r, 300));
      return received.length === before;
    }, 'the sync events to settle');
    received.length = 0;

    const task = await createTask(writeUrl, token, projectId, 'Written elsewhere');
    const id = { id: task.id };
    await post(writeUrl, `mutation($id: ID!) { updateTask(input: {id: $id, title: "Renamed elsewhere"}) { userErrors { code } } }`, id, token);
    await post(writeUrl, `mutation($id: ID!) { deleteTask(input: {id: $id}) { userErrors { code } } }`, id, token);
    await post(writeUrl, `mutation($id: ID!) { restoreTask(input: {id: $id}) { userErrors { code } } }`, id, token);
    await until(() => received.length >= 4 || failures.length > 0, 'four events', 100, 100);
    return { task, events: received, failures, closes };
  } finally {
    unsubscribe();
    await client.dispose();
  }
});
