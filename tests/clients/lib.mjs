// Shared by the client scripts: arguments, a plain GraphQL-over-HTTP call for the writes that
// happen "elsewhere" (another tab, another user), and a bounded wait.

/** The JSON object the Python test passed as the first argument. */
export function args() {
  return JSON.parse(process.argv[2]);
}

export async function post(url, query, variables = {}, token = undefined) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

export const CREATE_TASK = `mutation($p: ID!, $t: String!) {
  createTask(input: {projectId: $p, title: $t}) { task { id identifier title version } userErrors { code } }
}`;

export function createTask(url, token, projectId, title) {
  return post(url, CREATE_TASK, { p: projectId, t: title }, token).then((d) => d.createTask.task);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `probe` until it returns a truthy value, at most `attempts` times. */
export async function until(probe, what, attempts = 50, pauseMs = 200) {
  for (let i = 0; i < attempts; i += 1) {
    const value = await probe(i);
    if (value) return value;
    await sleep(pauseMs);
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Prints the result for the Python test and exits; errors exit 1 with the stack. */
export function run(main) {
  main().then(
    (result) => {
      process.stdout.write(JSON.stringify(result) + '\n');
      process.exit(0);
    },
    (error) => {
      process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
      process.exit(1);
    },
  );
}
