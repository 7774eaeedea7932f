// Conflicts, attachments (offline from the cache), one stream for six tabs, and lost storage.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, launchBrowser, logInThroughUi, newDevice, screenshots, startServer, waitForServiceWorker } from '../harness.mjs';

let server, browser, api, laptop, token;
const email = `library-${Date.now()}@example.com`;
const password = 'correct horse battery';

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  api = new Api(server.url);
  await api.call('POST', '/api/auth/register', { email, password });
  token = await api.login(email, password, 'seed');
  laptop = await newDevice(browser, server.url);
  await logInThroughUi(laptop.page, email, password);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const status = (page) => page.getByRole('status');

test('conflicting edits from two devices are settled side by side', async () => {
  const id = crypto.randomUUID();
  const created = await api.call('POST', '/api/materials', { id, title: 'Photosynthesis', body: 'Light makes sugar.\n', tags: ['biology'] }, token);
  const base = created.libraryVersion;
  const other = await api.login(email, password, 'tablet');
  await api.call('POST', '/api/library/mutations', { mutations: [{ mutationId: 1, type: 'material.update', id, baseVersion: base, data: { body: 'Light and water make sugar.\n' } }] }, token);
  await api.call('POST', '/api/library/mutations', { mutations: [{ mutationId: 1, type: 'material.update', id, baseVersion: base, data: { body: 'Chlorophyll turns light into sugar.\n' } }] }, other);
  await laptop.page.getByText('Needs your decision').waitFor();
  await laptop.page.getByRole('link', { name: /Photosynthesis/ }).click();
  await laptop.page.getByRole('heading', { name: 'Two devices edited the same text' }).waitFor();
  await screenshots(laptop.page, '11-conflict');
  await laptop.page.getByRole('button', { name: 'Use the other device’s version' }).click();
  await laptop.page.locator('#body', { hasText: 'Chlorophyll turns light into sugar.' }).waitFor();
  assert.equal(await laptop.page.getByRole('heading', { name: 'Two devices edited the same text' }).count(), 0);
});

test('a file is uploaded with progress, listed, and opens from the cache offline', async () => {
  await waitForServiceWorker(laptop.page);
  const text = 'Mitochondria notes\n'.repeat(2000);
  await laptop.page.getByLabel('Attach a file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(text) });
  await laptop.page.getByRole('link', { name: 'notes.txt' }).waitFor();
  await status(laptop.page).filter({ hasText: 'Synced' }).waitFor();
  await screenshots(laptop.page, '12-attachments', laptop.page.getByRole('heading', { name: 'Attachments' }));
  const href = await laptop.page.getByRole('link', { name: 'notes.txt' }).getAttribute('href');
  await laptop.page.waitForFunction(async (url) => (await (await caches.open('shelf-attachments')).match(url)) !== undefined, href);
  await laptop.context.setOffline(true);
  const offline = await laptop.page.evaluate(async (url) => (await fetch(url)).text(), href);
  assert.equal(offline, text);
  await laptop.context.setOffline(false);
});

test('six tabs share one event stream, and a closed leader is replaced', async () => {
  const tabs = await newDevice(browser, server.url);
  const open = new Set();
  tabs.context.on('request', (request) => request.url().includes('/api/library-version-events') && open.add(request));
  const ended = (request) => open.delete(request);
  tabs.context.on('requestfinished', ended);
  tabs.context.on('requestfailed', ended);
  await logInThroughUi(tabs.page, email, password);
  const pages = [tabs.page];
  for (let i = 1; i < 6; i++) {
    const page = await tabs.context.newPage();
    await page.goto('/');
    pages.push(page);
  }
  await Promise.all(pages.map((page) => status(page).filter({ hasText: 'Synced' }).waitFor()));
  await api.call('POST', '/api/materials', { title: 'Seen by every tab' }, token);
  await Promise.all(pages.map((page) => page.getByRole('link', { name: /Seen by every tab/ }).waitFor()));
  assert.equal(open.size, 1, 'one open stream for six tabs');
  await pages[0].close();
  await api.call('POST', '/api/materials', { title: 'After the leader closed' }, token);
  await Promise.all(pages.slice(1).map((page) => page.getByRole('link', { name: /After the leader closed/ }).waitFor()));
  await tabs.context.close();
});

test('when the browser wipes the offline copy, the learner is told what was lost', async () => {
  const phone = await newDevice(browser, server.url);
  await logInThroughUi(phone.page, email, password);
  await status(phone.page).filter({ hasText: 'Synced' }).waitFor();
  await phone.context.setOffline(true);
  await phone.page.getByRole('button', { name: 'New material' }).click();
  await phone.page.getByLabel('Title').fill('Written offline, then wiped');
  await phone.page.getByRole('button', { name: 'Save', exact: true }).click();
  await status(phone.page).filter({ hasText: 'Offline · 1 pending' }).waitFor();
  await phone.page.evaluate(() => indexedDB.deleteDatabase(`shelf-${JSON.parse(localStorage.getItem('shelf.session')).userId}`));
  await phone.page.getByRole('navigation').getByRole('link', { name: 'Library' }).click();
  await phone.page.getByText('1 unsent edit lost').waitFor();
  await status(phone.page).filter({ hasText: 'Offline · 0 pending' }).waitFor();
  await phone.context.setOffline(false);
  await status(phone.page).filter({ hasText: 'Synced' }).waitFor();
  await phone.page.getByRole('link', { name: /Photosynthesis/ }).waitFor();
  await screenshots(phone.page, '13-storage-lost');
  await phone.context.close();
});
