// Browser-test harness: a real `shelf serve` on a free port with a temp data dir, and Debian's
// headless Chromium driven by playwright-core (never a downloaded browser).
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
export const SCREENSHOTS = join(here, 'screenshots');
export const LAPTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** `shelf serve` with `extraArgs` (e.g. `['--push-allowed-hosts', '127.0.0.1']`). */
export async function startServer(extraArgs = []) {
  const binary = process.env.SHELF_BIN ?? join(repo, 'target', 'debug', 'shelf');
  if (!existsSync(binary)) throw new Error(`no shelf binary at ${binary}: run cargo build -p shelf-cli first`);
  const dataDir = mkdtempSync(join(tmpdir(), 'shelf-e2e-'));
  const child = spawn(binary, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...extraArgs], {
    env: { ...process.env, RUST_LOG: 'warn', SHELF_SSE_HEARTBEAT_SECS: '5' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`shelf exited with ${code} before printing its address`)));
    lines.on('line', (line) => {
      const match = /^Shelf is running at (\S+)/.exec(line);
      if (match) resolve(match[1]);
    });
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
  });
}

/** A device: its own browser context (own cookies, IndexedDB, Service Worker). */
export async function newDevice(browser, baseURL, viewport = LAPTOP) {
  const context = await browser.newContext({ baseURL, viewport });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  return { context, page };
}

/** Saves the current screen at laptop and phone size (then restores the laptop size), scrolled to `focus` if given. */
export async function screenshots(page, name, focus) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  for (const [label, size] of [['laptop', LAPTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(50); // one layout pass after the resize, for the picture only
    if (focus) await focus.evaluate((element) => element.scrollIntoView({ block: 'center' }));
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${label}.png`), fullPage: false });
  }
  await page.setViewportSize(LAPTOP);
}

/** API calls with a Bearer token, for seeding data the UI test does not need to click through. */
export class Api {
  constructor(url) {
    this.url = url;
  }
  async call(method, path, body, token) {
    const response = await fetch(this.url + path, {
      method,
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} -> ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
  async login(email, password, deviceName = 'seed') {
    return (await this.call('POST', '/api/auth/login', { email, password, deviceName })).token;
  }
}

export async function logInThroughUi(page, email, password, button = 'Log in') {
  await page.goto('/');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: button }).click();
  await page.getByRole('button', { name: 'New material' }).waitFor();
}

export async function waitForServiceWorker(page) {
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
  });
}
