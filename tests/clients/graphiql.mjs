// GraphiQL in headless Chromium, as a developer uses it, with every request to another host
// blocked: the editor renders, the docs explorer shows the schema, a query with a bearer token
// typed in the Headers tab returns data, and a subscription shows a live event.
import { mkdirSync } from 'node:fs';
import puppeteer from 'puppeteer-core';
import { args, createTask, run, until } from './lib.mjs';

const { host, token, projectId, workspaceId, outDir, chromium, readmeExample } = args();
const origin = `http://${host}`;

async function editorValue(page, selector) {
  return page.$eval(selector, (el) => el.querySelector('.CodeMirror').CodeMirror.getValue());
}

/** Types into a CodeMirror editor with the keyboard, as a person would, replacing its text. */
async function typeInto(page, selector, text) {
  await page.click(`${selector} .CodeMirror`);
  await page.keyboard.down('Control');
  await page.keyboard.press('KeyA');
  await page.keyboard.up('Control');
  await page.keyboard.press('Backspace');
  // GraphiQL closes brackets and quotes as one types; typing the closing one steps over it.
  await page.keyboard.type(text);
  const typed = await editorValue(page, selector);
  if (typed.replace(/\s+/g, '') !== text.replace(/\s+/g, '')) {
    throw new Error(`typed ${JSON.stringify(text)}, the editor shows ${JSON.stringify(typed)}`);
  }
}

async function response(page, predicate, what, attempts = 50, pauseMs = 200) {
  return until(async () => {
    const text = await editorValue(page, '.graphiql-response');
    try {
      const body = JSON.parse(text);
      return predicate(body) ? body : null;
    } catch {
      return null; // empty, or still a spinner
    }
  }, what, attempts, pauseMs);
}

run(async () => {
  mkdirSync(outDir, { recursive: true });
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--window-size=1400,900',
    ],
    defaultViewport: { width: 1400, height: 900 },
  });
  const blocked = [];
  const problems = [];
  try {
    // Only this server may be asked for anything; every other request is refused and noted.
    const offline = async (page) => {
      await page.setRequestInterception(true);
      page.on('request', (request) => {
        const url = request.url();
        if (url.startsWith(`${origin}/`) || url.startsWith('data:')) {
          request.continue();
        } else {
          blocked.push(url);
          request.abort('blockedbyclient');
        }
      });
    };
    const page = await browser.newPage();
    await offline(page);
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    await page.evaluateOnNewDocument(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
      });
    });

    await page.goto(`${origin}/graphql`, { waitUntil: 'networkidle0' });
    await page.waitForSelector('.graphiql-query-editor .CodeMirror');

    // The docs explorer lists the schema's root types (introspection through the fetcher).
    await page.click('button[aria-label="Show Documentation Explorer"]');
    await page.waitForSelector('.graphiql-doc-explorer-root-type');
    const rootTypes = await page.$$eval('.graphiql-doc-explorer-root-type', (els) =>
      els.map((el) => el.textContent),
    );

    // The bearer token, typed in the Headers tab.
    const [headersTab] = await page.$$('xpath/.//button[normalize-space(text())="Headers"]');
    await headersTab.click();
    const headers = '.graphiql-editor-tool .graphiql-editor:not(.hidden)';
    await typeInto(page, headers, `{"authorization": "Bearer ${token}"}`);

    await typeInto(
      page,
      '.graphiql-query-editor',
      '{ viewer { displayName } workspaces(first: 5) { nodes { name viewerRole } } }',
    );
    await page.click('.graphiql-execute-button');
    const query = await response(page, (b) => b.data && b.data.viewer, 'the query answer');
    await page.screenshot({ path: `${outDir}/graphiql-query.png` });

    // A subscription in a new tab of GraphiQL; events are written as another client would.
    await page.click('.graphiql-tab-add');
    await typeInto(
      page,
      '.graphiql-query-editor',
      `subscription { taskEvents(workspaceId: "${workspaceId}") { kind task { title } } }`,
    );
    await page.click('.graphiql-execute-button');
    let n = 0;
    const event = await until(async () => {
      n += 1;
      await createTask(`${origin}/graphql`, token, projectId, `From GraphiQL's neighbour ${n}`);
      try {
        return await response(page, (b) => b.data && b.data.taskEvents, 'an event', 3, 100);
      } catch {
        return null;
      }
    }, 'a subscription event in GraphiQL');
    await page.screenshot({ path: `${outDir}/graphiql-subscription.png` });

    // The README's browser example, verbatim, with the graphql-ws build the server ships. (A
    // page of its own: the example is run through `new Function`, which GraphiQL's CSP forbids.)
    const example = await browser.newPage();
    await example.setBypassCSP(true);
    await offline(example);
    await example.goto(`${origin}/healthz`);
    await example.addScriptTag({ url: `${origin}/graphiql/graphql-ws.min.js` });
    await example.evaluate(
      (code, accessToken, workspaceId) => {
        window.logged = [];
        const source = code
          .replace("import { createClient } from 'graphql-ws';", 'const { createClient } = graphqlWs;')
          .replaceAll('console.log(', 'window.logged.push(');
        const body = `return (async () => {\n${source}\n})();`;
        new Function('accessToken', 'workspaceId', body)(accessToken, workspaceId).catch((e) =>
          window.logged.push({ error: String(e) }),
        );
      },
      readmeExample,
      token,
      workspaceId,
    );
    let m = 0;
    const readme = await until(async () => {
      m += 1;
      await createTask(`${origin}/graphql`, token, projectId, `For the README example ${m}`);
      await new Promise((r) => setTimeout(r, 100));
      const logged = await example.evaluate(() => window.logged);
      return logged.length ? logged[0] : null;
    }, "the README example's first event");
    await example.close();
    return { rootTypes, query, event, readme, blocked, problems };
  } catch (error) {
    const [page] = (await browser.pages()).slice(-1);
    if (page) await page.screenshot({ path: `${outDir}/graphiql-failure.png` }).catch(() => {});
    error.message += `\nblocked: ${JSON.stringify(blocked)}\nproblems: ${problems.join('\n')}`;
    throw error;
  } finally {
    await browser.close();
  }
});
