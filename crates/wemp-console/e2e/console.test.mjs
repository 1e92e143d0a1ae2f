// End-to-end tests of the wemp web console in real headless Chromium.
//
// Starts the demo bot (`cargo build -p wemp-console --example console_server`, or the
// binary named by WEMP_CONSOLE_SERVER) on a free loopback port, opens /console/ in
// Debian's Chromium (CHROMIUM, default /usr/bin/chromium) through playwright-core, and
// drives the page as a developer would. Every chat action goes through the bot's real
// callback URL, signed and encrypted in safe mode, on WeChat's 5 s × 3 schedule.
//
// Screenshots of the chat and log views at phone and desktop width are written to
// docs/console/ (SCREENSHOTS=0 to skip writing them).

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const SERVER = process.env.WEMP_CONSOLE_SERVER
  || path.join(process.env.CARGO_TARGET_DIR || path.join(repo, 'target'), 'debug/examples/console_server');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(repo, 'docs/console');
const WRITE_SHOTS = process.env.SCREENSHOTS !== '0';
const BANNER = '该公众号暂时无法提供服务，请稍后再试';
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

const children = [];

/** Starts the demo bot; resolves with its base URL once it prints `listening on …`. */
function startServer(args, env = {}) {
  assert.ok(existsSync(SERVER), `demo server not built: ${SERVER} (cargo build -p wemp-console --example console_server)`);
  const child = spawn(SERVER, args, {
    env: { ...process.env, WEMP_CONSOLE_TOKEN: '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30_000);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve({ child, url: m[1] }); }
    });
  });
}

/** A fresh Chromium profile; launching failures fail the test run (never skipped). */
async function launch() {
  const profile = mkdtempSync(path.join(tmpdir(), 'wemp-console-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: DESKTOP,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // Works offline: any request off this machine is refused, so a page that needed one would show it.
  await context.route(/^https?:\/\/(?!127\.0\.0\.1|localhost)/, (route) => route.abort());
  return { context, profile };
}

async function shot(page, name, viewport) {
  if (!WRITE_SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.setViewportSize(viewport);
  await page.waitForTimeout(150); // let layout settle after the resize
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: false });
}

after(() => {
  for (const c of children) c.kill('SIGTERM');
});

describe('console on loopback (no token needed)', () => {
  let server;
  let browser;
  let page;
  const errors = [];

  before(async () => {
    server = await startServer(['--listen', '127.0.0.1:0']);
    browser = await launch();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error' && !/net::ERR_FAILED|ERR_NAME|Failed to load resource/.test(m.text())) errors.push(m.text()); });
  });

  after(async () => {
    if (browser) {
      await browser.context.close();
      rmSync(browser.profile, { recursive: true, force: true });
    }
  });

  test('opens the chat with the account menu', async () => {
    const res = await page.goto(`${server.url}/console/`);
    assert.equal(res.status(), 200);
    await page.getByRole('menuitem', { name: '今日歌曲' }).waitFor();
    assert.equal(await page.locator('#phone-title').textContent(), 'wemp 演示号');
    assert.equal(await page.locator('#menu-buttons > .menu-cell').count(), 3);
    await page.locator('#live.on').waitFor();
  });

  test('text: the reply bubble appears, links clickable', async () => {
    await page.getByRole('button', { name: 'Switch to keyboard' }).click();
    await page.getByLabel('Message').fill('hello');
    await page.getByLabel('Message').press('Enter');
    const reply = page.locator('.msg.bot .bubble', { hasText: '这是 wemp 的演示回复' });
    await reply.waitFor();
    assert.equal(await reply.getByRole('link', { name: '了解 wemp' }).getAttribute('href'), 'https://example.com/wemp');
    assert.equal(await page.locator('.msg.me .bubble', { hasText: 'hello' }).count(), 1);
  });

  test('menu: CLICK sends the key and shows the rule\'s reply; sub-buttons open', async () => {
    await page.getByRole('button', { name: 'Switch to the account menu' }).click();
    await page.getByRole('menuitem', { name: '今日歌曲' }).click();
    await page.locator('.msg.bot .bubble', { hasText: '今日歌曲：《晴天》' }).waitFor();
    await page.getByRole('menuitem', { name: /菜单/ }).click();
    await page.getByRole('menuitem', { name: '赞一下我们' }).click();
    await page.locator('.msg.bot .bubble', { hasText: '谢谢你的赞' }).waitFor();
    await page.getByRole('menuitem', { name: '文章' }).click();
    const card = page.locator('.news-card');
    await card.waitFor();
    assert.match(await card.textContent(), /wemp 1\.0 发布/);
  });

  test('follow: the welcome text arrives', async () => {
    await page.getByRole('button', { name: 'Switch to keyboard' }).click();
    await page.getByRole('button', { name: 'More actions' }).click();
    await page.getByRole('button', { name: 'Follow', exact: true }).click();
    await page.locator('.msg.bot .bubble', { hasText: '欢迎关注 wemp 演示号' }).waitFor();
  });

  test('a handler past WeChat\'s deadline: the banner, explained', { timeout: 60_000 }, async () => {
    await page.getByLabel('Message').fill('slow');
    await page.getByLabel('Message').press('Enter');
    const banner = page.locator('.notice.banner');
    await banner.waitFor({ timeout: 40_000 });
    assert.match(await banner.textContent(), new RegExp(BANNER));
    const why = await banner.locator('.banner-why').textContent();
    assert.match(why, /all 3 tries failed/);
    assert.match(why, /no answer within 5s/);
    const tries = page.locator('.try-item.banner .try-list li');
    assert.equal(await tries.count(), 3);
    await shot(page, 'chat-desktop.png', DESKTOP);
  });

  test('the live log lists every delivery with its outcome', async () => {
    await page.getByRole('link', { name: /Live log/ }).click();
    const row = (summary) => page.locator('#log-rows tr', { has: page.locator('td.col-summary', { hasText: summary }) });
    await row('hello').first().waitFor();
    assert.equal(await row('hello').first().locator('.badge').textContent(), 'reply');
    assert.equal(await row('CLICK V1001_TODAY_MUSIC').first().locator('.badge').textContent(), 'reply');
    assert.equal(await row('subscribe').first().locator('.badge').textContent(), 'reply');
    // WeChat hung up on each of its three tries of "slow": the server never answered in time.
    const slow = page.locator('#log-rows tr[data-outcome="abandoned"]');
    await slow.nth(2).waitFor();
    for (const text of await slow.locator('td.col-summary').allTextContents()) assert.match(text, /^slow/);

    // Filters: by outcome, then by type.
    await page.getByLabel('Outcome').selectOption('abandoned');
    assert.equal(await page.locator('#log-rows tr').count(), await slow.count());
    await page.getByLabel('Outcome').selectOption('');
    await page.getByLabel('Type').selectOption('event:CLICK');
    assert.ok(await page.locator('#log-rows tr').count() >= 3);
    for (const t of await page.locator('#log-rows tr td:nth-child(3)').allTextContents()) assert.equal(t, 'event:CLICK');
    await page.getByLabel('Type').selectOption('');

    // Detail: decrypted XML, mode, dedup outcome, handler, latency.
    await row('hello').first().click();
    const detail = page.locator('#detail');
    await detail.waitFor();
    const kv = await detail.locator('dl').textContent();
    assert.match(kv, /Modesafe/);
    assert.match(kv, /Dedupnew/);
    assert.match(kv, /Handlertext == "hello"/);
    assert.match(await detail.locator('#detail-raw').textContent(), /<Content><!\[CDATA\[hello\]\]><\/Content>/);
    assert.match(await detail.locator('#detail-reply').textContent(), /了解 wemp/);
    await shot(page, 'log-desktop.png', DESKTOP);
    await page.keyboard.press('Escape');
    assert.equal(await detail.isVisible(), false);
  });

  test('phone width: chat and log fit the screen', async () => {
    await page.setViewportSize(PHONE);
    await page.getByRole('link', { name: 'Chat' }).click();
    await page.getByLabel('Message').fill('news please');
    await page.getByLabel('Message').press('Enter');
    await page.locator('.news-card').nth(1).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px at phone width`);
    await page.getByRole('button', { name: 'Switch to the account menu' }).click();
    await shot(page, 'chat-phone.png', PHONE);
    await page.getByRole('link', { name: /Live log/ }).click();
    await page.locator('#log-rows tr').first().waitFor();
    await shot(page, 'log-phone.png', PHONE);
    await page.setViewportSize(DESKTOP);
  });

  test('setup: paste values with copy buttons, AES key masked until revealed, doctor, rules reload', async () => {
    await page.getByRole('link', { name: 'Setup' }).click();
    const paste = page.locator('#paste');
    await paste.getByText('wempdemo2024').waitFor();
    assert.match(await paste.textContent(), new RegExp(`${server.url.replace(/[.]/g, '\\.')}/wechat`));
    const key = page.locator('#aes-key');
    assert.doesNotMatch(await key.textContent(), /efghijklmnop/);
    assert.equal(await page.getByRole('button', { name: /^Copy / }).count(), 4);
    await page.getByRole('button', { name: 'Reveal' }).click();
    await page.locator('#aes-key', { hasText: 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG' }).waitFor();
    await page.locator('#checks .check.pass', { hasText: 'Token format' }).waitFor();
    await page.locator('#checks .check.skip', { hasText: 'AppSecret' }).waitFor();
    assert.equal(await page.locator('#checks .check').count(), 3);
    assert.ok(await page.locator('#rules-rows tr').count() > 3);
    await page.getByRole('button', { name: 'Reload rules' }).click();
    await page.locator('#reload-status.ok', { hasText: 'Reloaded' }).waitFor();
    await shot(page, 'setup-desktop.png', DESKTOP);
  });

  test('state-changing requests without the CSRF token are refused', async () => {
    const status = await page.evaluate(async () => {
      const r = await fetch('/console/api/send', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user: 'oWempTestUser000000000000001', action: { kind: 'text', content: 'x' } }),
      });
      return r.status;
    });
    assert.equal(status, 403);
  });

  test('the AppSecret never reaches the page; no script errors', async () => {
    const secret = 'e2eAppSecretNeverOnThePage0001'; // examples/console.toml
    const bodies = await page.evaluate(async () => Promise.all(
      ['config', 'setup', 'doctor', 'rules', 'history'].map(async (p) => (await fetch(`/console/api/${p}`)).text()),
    ));
    for (const b of [await page.content(), ...bodies]) assert.ok(!b.includes(secret), 'AppSecret leaked');
    assert.deepEqual(errors, []);
  });
});

describe('console beyond loopback', () => {
  test('with a token: refused until the token is entered, then kept in a cookie', async () => {
    const { url } = await startServer(['--listen', '0.0.0.0:0'], { WEMP_CONSOLE_TOKEN: 'e2e-admin-token' });
    const port = new URL(url).port;
    const base = `http://127.0.0.1:${port}/console`;
    const b = await launch();
    try {
      const page = await b.context.newPage();
      const res = await page.goto(`${base}/`);
      assert.equal(res.status(), 401);
      assert.equal(await page.locator('#phone').count(), 0, 'the console must not be served');
      const api = await page.evaluate(async () => (await fetch('/console/api/setup')).status);
      assert.equal(api, 401);
      await page.getByLabel('Admin token').fill('wrong');
      await page.getByRole('button', { name: 'Open the console' }).click();
      await page.getByText('wrong token').waitFor();
      await page.getByLabel('Admin token').fill('e2e-admin-token');
      await page.getByRole('button', { name: 'Open the console' }).click();
      await page.getByRole('menuitem', { name: '今日歌曲' }).waitFor();
      const cookies = await b.context.cookies();
      const c = cookies.find((x) => x.name === 'wemp_console');
      assert.ok(c && c.httpOnly && c.sameSite === 'Strict', JSON.stringify(cookies));
      assert.ok(!c.value.includes('e2e-admin-token'), 'the cookie must not hold the token');
      // Once per browser: a new page opens straight away.
      const again = await b.context.newPage();
      assert.equal((await again.goto(`${base}/`)).status(), 200);
    } finally {
      await b.context.close();
      rmSync(b.profile, { recursive: true, force: true });
    }
  });

  test('without a token: disabled, with the reason', async () => {
    const { url } = await startServer(['--listen', '0.0.0.0:0']);
    const port = new URL(url).port;
    const b = await launch();
    try {
      const page = await b.context.newPage();
      const res = await page.goto(`http://127.0.0.1:${port}/console/`);
      assert.equal(res.status(), 403);
      await page.getByText('WEMP_CONSOLE_TOKEN').first().waitFor();
      assert.equal(await page.getByLabel('Admin token').isVisible(), false);
      const api = await page.evaluate(async () => (await fetch('/console/api/config')).status);
      assert.equal(api, 403);
    } finally {
      await b.context.close();
      rmSync(b.profile, { recursive: true, force: true });
    }
  });
});
