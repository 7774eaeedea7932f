// A new build is announced to open tabs and applied with one reload, never under unsaved typing.
import { createServer, request as forward } from 'node:http';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, launchBrowser, logInThroughUi, newDevice, screenshots, startServer, waitForServiceWorker } from '../harness.mjs';

let server, browser, proxy, proxyUrl;
let build = 1;

/**
 * A pass-through proxy in front of `shelf serve` that can pretend the server was upgraded: from
 * build 2 on, `/sw.js` differs by one comment, which is all a browser needs to see a new version.
 * (Playwright cannot intercept the browser's own Service Worker script fetches.)
 */
function startProxy(target) {
  const upstream = new URL(target);
  proxy = createServer((incoming, outgoing) => {
    const headers = { ...incoming.headers, 'accept-encoding': 'identity' };
    // The new build's sw.js has a new ETag; the old one must not get a 304.
    if (incoming.url === '/sw.js' && build > 1) delete headers['if-none-match'];
    const upstreamRequest = forward({ host: upstream.hostname, port: upstream.port, path: incoming.url, method: incoming.method, headers }, (answer) => {
      if (incoming.url === '/sw.js' && build > 1) {
        const chunks = [];
        answer.on('data', (chunk) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat([...chunks, Buffer.from(`\n// build ${build}\n`)]);
          const headers = { ...answer.headers, 'content-length': String(body.length) };
          delete headers.etag;
          delete headers['transfer-encoding'];
          delete headers['content-encoding'];
          outgoing.writeHead(answer.statusCode, headers).end(body);
        });
        return;
      }
      outgoing.writeHead(answer.statusCode, answer.headers);
      answer.pipe(outgoing);
    });
    incoming.pipe(upstreamRequest);
  });
  return new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${proxy.address().port}`)));
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  proxyUrl = await startProxy(server.url);
});

after(async () => {
  await browser?.close();
  proxy?.closeAllConnections();
  proxy?.close();
  await server?.stop();
});

test('a new version waits for unsaved typing, then reloads the tab once', async () => {
  const email = `update-${Date.now()}@example.com`;
  const password = 'correct horse battery';
  const api = new Api(server.url);
  await api.call('POST', '/api/auth/register', { email, password });
  const device = await newDevice(browser, proxyUrl);
  await logInThroughUi(device.page, email, password);
  await waitForServiceWorker(device.page);
  await device.page.getByRole('button', { name: 'New material' }).click();
  await device.page.getByLabel('Title').fill('Half-typed thought');
  let loads = 0;
  device.page.on('load', () => loads++);
  build = 2;
  await device.page.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.update());
  await device.page.getByText('A new version of Shelf is ready').waitFor();
  await screenshots(device.page, '14-update-ready');
  assert.equal(loads, 0, 'no reload while the title holds unsaved typing');
  assert.equal(await device.page.getByLabel('Title').inputValue(), 'Half-typed thought');
  await device.page.getByRole('button', { name: 'Save', exact: true }).click();
  await device.page.waitForEvent('load');
  await device.page.waitForFunction(() => document.querySelector('#title')?.value === 'Half-typed thought');
  assert.equal(await device.page.getByText('A new version of Shelf is ready').count(), 0);
  assert.equal(loads, 1, 'reloaded exactly once');
});
