// Web Push in a real browser (issue 13): the Settings opt-in, the server's push to a stand-in push
// service on loopback, the Service Worker's push handling driven through the DevTools protocol
// (ServiceWorker.deliverPushMessage), IndexedDB, and the reopened app refreshing from it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import http from 'node:http';
import { Api, launchBrowser, logInThroughUi, newDevice, screenshots, startServer, waitForServiceWorker } from '../harness.mjs';

let server, browser, laptop, api, pushService, userId, phoneToken;
const received = [];
const email = `push-${Date.now()}@example.com`;
const password = 'correct horse battery';
const NOTIFY = 'Notify me when my library changes on another device';

before(async () => {
  pushService = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ path: request.url, headers: request.headers, body: Buffer.concat(chunks) });
      response.writeHead(201).end();
    });
  });
  await new Promise((resolve) => pushService.listen(0, '127.0.0.1', resolve));
  server = await startServer(['--push-allowed-hosts', '127.0.0.1']);
  browser = await launchBrowser();
  api = new Api(server.url);
  userId = (await api.call('POST', '/api/auth/register', { email, password })).userId;
  phoneToken = await api.login(email, password, 'phone');
});

after(async () => {
  await browser?.close();
  await server?.stop();
  pushService?.close();
});

const status = (page) => page.getByRole('status');
const base64url = (bytes) => Buffer.from(bytes).toString('base64url');

/** Headless Chromium has no push service to subscribe with: the page's PushManager hands out a
 * subscription on the stand-in push service instead (valid keys, so the server accepts it). */
async function fakePushManager(context, endpoint) {
  const keys = { p256dh: base64url(createECDH('prime256v1').generateKeys()), auth: base64url(randomBytes(16)) };
  await context.addInitScript(({ endpoint, keys }) => {
    let current = null;
    PushManager.prototype.subscribe = async function (options) {
      current = {
        endpoint,
        expirationTime: null,
        options: { userVisibleOnly: true, applicationServerKey: new Uint8Array(options.applicationServerKey).buffer },
        toJSON: () => ({ endpoint, expirationTime: null, keys }),
        unsubscribe: async () => ((current = null), true),
      };
      return current;
    };
    PushManager.prototype.getSubscription = async () => current;
  }, { endpoint, keys });
}

/** Reads a record of the user's replica database from a page of the app's origin. */
function readMeta(page, key) {
  return page.evaluate(
    ({ name, key }) =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open(name);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const get = open.result.transaction('meta').objectStore('meta').get(key);
          get.onsuccess = () => (open.result.close(), resolve(get.result ?? null));
          get.onerror = () => reject(get.error);
        };
      }),
    { name: `shelf-${userId}`, key },
  );
}

async function until(what, check) {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`never happened: ${what}`);
}

test('notifications are turned on from Settings, and only from its click', async () => {
  laptop = await newDevice(browser, server.url);
  await laptop.context.grantPermissions(['notifications'], { origin: server.url });
  await fakePushManager(laptop.context, `http://127.0.0.1:${pushService.address().port}/push/laptop`);
  await logInThroughUi(laptop.page, email, password);
  await waitForServiceWorker(laptop.page);
  await laptop.page.getByRole('link', { name: 'Settings' }).click();
  const toggle = laptop.page.getByRole('switch', { name: NOTIFY });
  await toggle.waitFor();
  assert.equal(await toggle.isChecked(), false, 'off until the learner turns it on');
  await screenshots(laptop.page, '20-settings-notifications-off');
  await toggle.click();
  await until('the switch is on', () => toggle.isChecked());
  await screenshots(laptop.page, '21-settings-notifications-on');
  const devices = await api.call('GET', '/api/devices', undefined, phoneToken);
  assert.deepEqual(devices.map((d) => [d.deviceName, d.push]).sort(), [['Chrome on Linux', true], ['phone', false]]);
});

test('a closed app gets a push: the Service Worker records the version and notifies', async () => {
  await laptop.page.close(); // the app is closed: no stream, so the server pushes
  let sent = 0;
  await until('the server pushes to the stand-in push service', async () => {
    if (received.length > 0) return true;
    await api.call('POST', '/api/materials', { title: `From the phone ${++sent}`, body: 'sent while the laptop was closed', tags: [] }, phoneToken);
    return false;
  });
  const push = received[0];
  assert.equal(push.path, '/push/laptop');
  assert.equal(push.headers['content-encoding'], 'aes128gcm');
  assert.match(push.headers.authorization, /^vapid t=[\w-]+\.[\w-]+\.[\w-]+, k=[\w-]{87}$/);
  assert.equal(push.headers.topic, 'shelf-library');

  // Deliver the push to the laptop's Service Worker as the browser would.
  const page = await laptop.context.newPage();
  await page.goto('/healthz'); // a page of the origin that does not start the app
  const cdp = await laptop.context.newCDPSession(page);
  const registration = new Promise((resolve) => cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => registrations.length && resolve(registrations[0])));
  await cdp.send('ServiceWorker.enable');
  const { registrationId } = await registration;
  const before = await readMeta(page, 'version');
  const server_ = await api.call('GET', '/api/library/version', undefined, phoneToken);
  assert.ok(server_.libraryVersion > before.libraryVersion, 'the replica is behind the server');
  await page.evaluate(() => {
    window.shelfMessages = [];
    navigator.serviceWorker.onmessage = (event) => window.shelfMessages.push(event.data);
  });
  await cdp.send('ServiceWorker.deliverPushMessage', { origin: server.url, registrationId, data: JSON.stringify(server_) });
  await until('IndexedDB holds the pushed version', async () => (await readMeta(page, 'pushedVersion'))?.libraryVersion === server_.libraryVersion);
  assert.deepEqual(await readMeta(page, 'pushedVersion'), server_);
  assert.deepEqual(await readMeta(page, 'version'), before, "the replica's own version moves only with its data");
  // The worker tells open windows after its notification was shown (headless Chromium keeps no
  // notification list to read back, so the message carries the text it showed).
  await until('open windows are told', async () => (await page.evaluate(() => window.shelfMessages.length)) > 0);
  const behind = server_.libraryVersion - before.libraryVersion;
  assert.deepEqual(await page.evaluate(() => window.shelfMessages), [
    { type: 'shelf-push', version: server_, notification: `${behind} ${behind === 1 ? 'change' : 'changes'} on another device (version ${server_.libraryVersion})` },
  ]);
  await page.close();
  laptop.version = server_;
});

test('the reopened app knows from IndexedDB that the server is ahead, and refreshes', async () => {
  await laptop.context.setOffline(true);
  const page = await laptop.context.newPage();
  await page.goto('/');
  await status(page).filter({ hasText: 'Offline · 0 pending' }).waitFor();
  await page.getByText(`Your library changed on another device (version ${laptop.version.libraryVersion}). It updates when you are back online.`).waitFor();
  await screenshots(page, '22-push-version-waiting-offline');
  await laptop.context.setOffline(false);
  await page.getByRole('link', { name: /From the phone 1/ }).waitFor();
  await status(page).filter({ hasText: 'Synced' }).waitFor();
  await page.getByText('Your library changed on another device').waitFor({ state: 'detached' });
  await until('the replica caught up', async () => (await readMeta(page, 'version'))?.libraryVersion >= laptop.version.libraryVersion);
  laptop.page = page;
});

test('turning notifications off removes the subscription', async () => {
  await laptop.page.getByRole('link', { name: 'Settings' }).click();
  const toggle = laptop.page.getByRole('switch', { name: NOTIFY });
  await until('the switch shows the renewed subscription', () => toggle.isChecked());
  await toggle.click();
  await until('the switch is off', async () => !(await toggle.isChecked()));
  const devices = await api.call('GET', '/api/devices', undefined, phoneToken);
  assert.ok(devices.every((d) => !d.push));
});
