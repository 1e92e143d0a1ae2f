// End-to-end tests of the wemp web console in real headless Chromium, against `wemp serve`.
//
// Runs the built `wemp` binary (`cargo build -p wemp-cli`, or the one named by WEMP_BIN)
// with the annotated example config (crates/wemp-cli/examples/wemp.toml) on a free
// loopback port, in safe mode (WEMP_MODE/WEMP_APPID/WEMP_AES_KEY), with an AppSecret and
// a small fake of WeChat's API (below) so replies that miss the deadline go out as
// customer-service messages. Opens /console/ in Debian's Chromium (CHROMIUM, default
// /usr/bin/chromium) through playwright-core and drives the page as a developer would:
// every chat action goes through the server's real callback URL, signed and encrypted,
// on WeChat's 5 s × 3 schedule.
//
// A second `wemp serve` runs the example config with a second account (safe mode, its own
// path and keys): the page switches between the two, and the live log tags each delivery.
//
// Screenshots of the chat and log views at phone and desktop width are written to SHOTS_DIR
// when it is set (scripts/screenshots sets it to docs/console), else to a scratch directory
// removed afterwards, so running the tests never changes the tracked tree (SCREENSHOTS=0 to
// skip taking them).

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes, randomInt } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, mkdirSync, rmSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { STRINGS } from '../assets/strings.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const WEMP = process.env.WEMP_BIN
  || path.join(process.env.CARGO_TARGET_DIR || path.join(repo, 'target'), 'debug/wemp');
const EXAMPLE = path.join(repo, 'crates/wemp-cli/examples/wemp.toml');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SHOTS_DIR
  ? path.resolve(process.env.SHOTS_DIR)
  : mkdtempSync(path.join(tmpdir(), 'wemp-console-e2e-shots-'));
const WRITE_SHOTS = process.env.SCREENSHOTS !== '0';
const BANNER = '该公众号暂时无法提供服务，请稍后再试';
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

// The account the example config is run as (safe mode: every action is encrypted).
const TOKEN = 'wempDemoToken2024'; // examples/wemp.toml
const APPID = 'wx2c2769f8efd9abc2';
const AES_KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
const APPSECRET = 'e2eAppSecretNeverOnThePage0001';
const ALICE = 'oWempTestUser000000000000001';

const children = [];
const dirs = process.env.SHOTS_DIR ? [] : [SHOTS];

// The third-party platform (第三方平台) the component suite runs, and the account that
// authorizes it (the fake's authorization code becomes this authorizer).
const COMPONENT = {
  appid: 'wxc0mp0nent0000e2e', secret: 'e2eComponentSecretNeverShown1', token: 'compToken2024',
  key: '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg',
};
const AUTHORIZER = { appid: 'wx00000000000000d4', gh: 'gh_d4e2e0000000', nick: 'e2e 小店', code: 'queryauthcode@@@e2e' };

/**
 * A fake of the WeChat API as far as `wemp serve` and `wemp doctor` use it: tokens,
 * getcallbackip, the customer-service account list, API quotas, customer-service messages
 * (recorded in `sent`), and the third-party platform's component token, code exchange
 * (counted in `exchanges`; each code once) and authorizer profile.
 */
function fakePlatform() {
  const sent = [];
  const codes = new Set([AUTHORIZER.code]);
  const exchanges = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const url = new URL(req.url, 'http://x');
      const reply = (obj) => { res.setHeader('Content-Type', 'application/json'); res.end(JSON.stringify(obj)); };
      const json = () => { try { return JSON.parse(body); } catch { return {}; } };
      switch (url.pathname) {
        case '/cgi-bin/component/api_component_token':
          return reply({ component_access_token: 'FAKE_COMPONENT_TOKEN', expires_in: 7200 });
        case '/cgi-bin/component/api_query_auth': {
          const code = json().authorization_code;
          exchanges.push(code);
          if (!codes.delete(code)) return reply({ errcode: 61010, errmsg: 'code is expired' });
          return reply({ authorization_info: {
            authorizer_appid: AUTHORIZER.appid, authorizer_access_token: 'FAKE_AUTHORIZER_TOKEN', expires_in: 7200,
            authorizer_refresh_token: 'refreshtoken@@@e2e', func_info: [{ funcscope_category: { id: 1 } }],
          } });
        }
        case '/cgi-bin/component/api_get_authorizer_info':
          return reply({ authorizer_info: { nick_name: AUTHORIZER.nick, user_name: AUTHORIZER.gh, principal_name: 'E2E 有限公司' } });
        case '/cgi-bin/stable_token':
        case '/cgi-bin/token': return reply({ access_token: 'FAKE_ACCESS_TOKEN', expires_in: 7200 });
        case '/cgi-bin/getcallbackip': return reply({ ip_list: ['127.0.0.1'] });
        case '/cgi-bin/customservice/getkflist': return reply({ kf_list: [] });
        case '/cgi-bin/openapi/quota/get':
          return reply({ errcode: 0, errmsg: 'ok', quota: { daily_limit: 500000, used: sent.length, remain: 500000 - sent.length } });
        case '/cgi-bin/message/custom/send':
          sent.push(JSON.parse(body));
          return reply({ errcode: 0, errmsg: 'ok' });
        default: res.statusCode = 404; return reply({ errcode: 40066, errmsg: `invalid url ${url.pathname}` });
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ server, sent, exchanges, url: `http://127.0.0.1:${server.address().port}` });
  }));
}

/**
 * Starts `wemp serve --config examples/wemp.toml` (or `config`) with `env` on top of a
 * clean WEMP_* environment and its own data directory; resolves with the callback URL's
 * origin and the first screen once the screen is printed.
 */
function startServe(env = {}, config = EXAMPLE) {
  assert.ok(existsSync(WEMP), `wemp not built: ${WEMP} (cargo build -p wemp-cli)`);
  const data = mkdtempSync(path.join(tmpdir(), 'wemp-console-e2e-data-'));
  dirs.push(data);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WEMP_')));
  const child = spawn(WEMP, ['serve', '--config', config], {
    env: { ...clean, WEMP_LOG: 'warn', WEMP_LISTEN: '127.0.0.1:0', WEMP_DATA_DIR: data, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`wemp serve did not start: ${out}`)), 30_000);
    child.on('exit', (code) => reject(new Error(`wemp serve exited with ${code}: ${out}`)));
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/wemp serve is running on (http:\/\/[^/\s]+)\//);
      if (m && /Stop with Ctrl-C/.test(out)) { clearTimeout(timer); resolve({ child, url: m[1], screen: out }); }
    });
  });
}

/**
 * Posts `xml` to `url` as WeChat posts a third-party platform's authorization events:
 * AES-256-CBC with the component's EncodingAESKey for the component appid (its ReceiveId),
 * signed with its Token (`msg_signature` over the ciphertext). Resolves with the answer.
 */
// `wemp serve` as the third-party platform COMPONENT with `accounts` (config lines) and the
// price rule, against a fresh fake platform; its config file is kept for the test to read.
async function startPlatform(name, accounts) {
  const platform = await fakePlatform();
  const dir = mkdtempSync(path.join(tmpdir(), `wemp-console-e2e-${name}-`));
  dirs.push(dir);
  const config = path.join(dir, 'wemp.toml');
  writeFileSync(config, [
    ...accounts,
    '[component]', `appid = "${COMPONENT.appid}"`, `token = "${COMPONENT.token}"`, `aes_key = "${COMPONENT.key}"`, '',
    '[[rules]]', 'name = "price"', 'keyword = "price"', 'reply.text = "It costs 1 yuan."', '',
  ].join('\n'));
  const server = await startServe({ WEMP_API_BASE: platform.url, WEMP_COMPONENT_APPSECRET: COMPONENT.secret }, config);
  return { platform, server, config };
}

// WeChat's component_verify_ticket push, sealed as WeChat does: answered `success`.
async function pushTicket(server) {
  const ticket = `<xml><AppId><![CDATA[${COMPONENT.appid}]]></AppId><CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime>`
    + '<InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[ticket@@@e2e]]></ComponentVerifyTicket></xml>';
  assert.deepEqual(await pushComponent(`${server.url}/component`, ticket), [200, 'success']);
}

async function pushComponent(url, xml) {
  const key = Buffer.from(`${COMPONENT.key}=`, 'base64');
  const text = Buffer.from(xml);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(text.length);
  let plain = Buffer.concat([randomBytes(16), length, text, Buffer.from(COMPONENT.appid)]);
  const pad = 32 - (plain.length % 32);
  plain = Buffer.concat([plain, Buffer.alloc(pad, pad)]);
  const aes = createCipheriv('aes-256-cbc', key, key.subarray(0, 16)).setAutoPadding(false);
  const encrypt = Buffer.concat([aes.update(plain), aes.final()]).toString('base64');
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = String(randomInt(1e9));
  const sha1 = (...parts) => createHash('sha1').update(parts.sort().join('')).digest('hex');
  const query = new URLSearchParams({
    signature: sha1(COMPONENT.token, timestamp, nonce), timestamp, nonce, encrypt_type: 'aes',
    msg_signature: sha1(COMPONENT.token, timestamp, nonce, encrypt),
  });
  const res = await fetch(`${url}?${query}`, {
    method: 'POST', headers: { 'Content-Type': 'text/xml' },
    body: `<xml><AppId><![CDATA[${COMPONENT.appid}]]></AppId><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`,
  });
  return [res.status, await res.text()];
}

/** `wemp serve` in safe mode with an AppSecret, late replies going to `platform`. */
const safeEnv = (platform) => ({
  WEMP_MODE: 'safe', WEMP_APPID: APPID, WEMP_AES_KEY: AES_KEY, WEMP_ORIGINAL_ID: 'gh_10f6c3c3ac5a',
  WEMP_ACCOUNT_NAME: 'wemp 演示号', WEMP_APPSECRET: APPSECRET, WEMP_API_BASE: platform.url,
});

/**
 * A fresh Chromium profile speaking `locale` (the page follows the browser's language);
 * launching failures fail the test run (never skipped).
 */
async function launch(locale = 'en-US') {
  const profile = mkdtempSync(path.join(tmpdir(), 'wemp-console-e2e-'));
  dirs.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: DESKTOP,
    locale,
    args: [`--lang=${locale}`, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // Works offline: any request off this machine is refused, so a page that needed one would show it.
  await context.route(/^https?:\/\/(?!127\.0\.0\.1|localhost)/, (route) => route.abort());
  return context;
}

function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/net::ERR_FAILED|ERR_NAME|Failed to load resource/.test(m.text())) errors.push(m.text()); });
  return errors;
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
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * The suite's `wemp serve` (the example config in safe mode, late replies to a fake platform)
 * and one page in a browser speaking `locale`: hooks that start them before the suite's
 * tests and stop them after; the returned object is filled when the tests run.
 */
function servedConsole(locale) {
  const s = {};
  before(async () => {
    s.platform = await fakePlatform();
    s.server = await startServe(safeEnv(s.platform));
    s.browser = await launch(locale);
    s.page = await s.browser.newPage();
    s.errors = watchErrors(s.page);
  });
  after(async () => {
    if (s.browser) await s.browser.close();
    if (s.platform) s.platform.server.close();
  });
  return s;
}

describe('wemp serve with the example config: the console on loopback', () => {
  const served = servedConsole('en-US');
  let platform;
  let server;
  let page;
  let errors;
  before(() => ({ platform, server, page, errors } = served));

  test('the first screen names the console', () => {
    assert.match(server.screen, new RegExp(`Web console .*: ${server.url.replace(/[.]/g, '\\.')}/console/ \\(this machine only\\)`));
  });

  test('opens the chat with the account menu from [menu]', async () => {
    const res = await page.goto(`${server.url}/console/`);
    assert.equal(res.status(), 200);
    await page.getByRole('menuitem', { name: 'News' }).waitFor();
    assert.equal(await page.locator('#phone-title').textContent(), 'wemp 演示号');
    assert.equal(await page.locator('#menu-buttons > .menu-cell').count(), 3);
    await page.locator('#live.on').waitFor();
  });

  test('text: the reply bubble appears, links clickable', async () => {
    await page.getByRole('button', { name: 'Switch to keyboard' }).click();
    await page.getByLabel('Message').fill('help');
    await page.getByLabel('Message').press('Enter');
    const reply = page.locator('.msg.bot .bubble', { hasText: 'Send "order 42"' });
    await reply.waitFor();
    assert.equal(await reply.getByRole('link', { name: 'https://example.com/wemp' }).getAttribute('href'), 'https://example.com/wemp');
    await page.getByLabel('Message').fill('order 42');
    await page.getByLabel('Message').press('Enter');
    await page.locator('.msg.bot .bubble', { hasText: `Order 42 is on its way, ${ALICE}.` }).waitFor();
  });

  test('menu: CLICK sends the key and shows the rule\'s reply; sub-buttons open', async () => {
    await page.getByRole('button', { name: 'Switch to the account menu' }).click();
    await page.getByRole('menuitem', { name: 'News' }).click();
    const card = page.locator('.news-card');
    await card.waitFor();
    assert.match(await card.textContent(), /This week.*Last week/s);
    await page.getByRole('menuitem', { name: /More/ }).click();
    await page.getByRole('menuitem', { name: 'Music' }).click();
    await page.locator('.msg.bot .media-box', { hasText: 'Theme' }).waitFor();
    await page.getByRole('menuitem', { name: 'Contact' }).click();
    await page.locator('.notice.transfer', { hasText: 'support@example_wechat' }).waitFor();
  });

  test('follow: the welcome text arrives', async () => {
    await page.getByRole('button', { name: 'Switch to keyboard' }).click();
    await page.getByRole('button', { name: 'More actions' }).click();
    await page.getByRole('button', { name: 'Follow', exact: true }).click();
    await page.locator('.msg.bot .bubble', { hasText: `Welcome, ${ALICE}!` }).waitFor();
  });

  test('a handler past the deadline: success at 4.5 s, explained, the reply sent later', { timeout: 30_000 }, async () => {
    // The SLOW rule waits 6 s; the server answers `success` at its 4.5 s deadline.
    await page.getByRole('button', { name: 'Switch to the account menu' }).click();
    await page.getByRole('menuitem', { name: /More/ }).click();
    await page.getByRole('menuitem', { name: 'Slow reply (6 s)' }).click();
    const deadline = page.locator('.notice.deadline');
    await deadline.waitFor({ timeout: 15_000 });
    const said = await deadline.textContent();
    assert.match(said, /Answered “success” at the server’s deadline \(4\.\d s\)/);
    assert.match(said, /WeChat shows nothing now and does not retry/);
    // WeChat got its answer in time: one try, no banner.
    assert.equal(await page.locator('.notice.banner').count(), 0);
    const tries = page.locator('.try-item', { hasText: 'menu click SLOW' }).locator('.try-list li');
    assert.equal(await tries.count(), 1);
    // When the handler finishes, its reply goes out as a customer-service message.
    const late = page.locator('.notice.late', { hasText: 'Late reply sent as a customer-service message' });
    await late.waitFor({ timeout: 15_000 });
    await page.locator('.msg.bot .bubble', { hasText: 'Sorry for the wait' }).waitFor();
    const cs = platform.sent.find((m) => m.touser === ALICE && m.msgtype === 'text');
    assert.ok(cs, `no customer-service message reached the platform: ${JSON.stringify(platform.sent)}`);
    assert.match(cs.text.content, /Sorry for the wait/);
    await shot(page, 'chat-desktop.png', DESKTOP);
  });

  test('the live log lists every delivery with its outcome', async () => {
    await page.getByRole('link', { name: /Live log/ }).click();
    const row = (summary) => page.locator('#log-rows tr', { has: page.locator('td.col-summary', { hasText: summary }) });
    await row('help').first().waitFor();
    assert.equal(await row('help').first().locator('.badge').textContent(), 'reply');
    assert.equal(await row('CLICK NEWS').first().locator('.badge').textContent(), 'reply');
    assert.equal(await row('subscribe').first().locator('.badge').textContent(), 'reply');
    // The slow click: answered `success` at the deadline, then the late reply's fate.
    const slow = row('CLICK SLOW');
    assert.deepEqual((await slow.locator('.badge').allTextContents()).sort(), ['deadline', 'late reply']);

    // Filters: by outcome, then by type.
    await page.getByLabel('Outcome').selectOption('deadline');
    assert.equal(await page.locator('#log-rows tr').count(), 1);
    await page.getByLabel('Outcome').selectOption('');
    await page.getByLabel('Type').selectOption('event:CLICK');
    assert.ok(await page.locator('#log-rows tr').count() >= 4);
    for (const t of await page.locator('#log-rows tr td:nth-child(3)').allTextContents()) assert.equal(t, 'event:CLICK');
    await page.getByLabel('Type').selectOption('');

    // The follow-up's detail says where the reply went.
    await page.locator('#log-rows tr[data-outcome="follow_up"]').click();
    const detail = page.locator('#detail');
    await detail.waitFor();
    assert.match(await detail.locator('#detail-diag').textContent(), /The late reply was sent as a customer-service message/);
    await page.keyboard.press('Escape');

    // Detail: decrypted XML, mode, dedup outcome, handler, latency.
    await row('help').first().click();
    await detail.waitFor();
    const kv = await detail.locator('#detail-kv').textContent();
    assert.match(kv, /Modesafe/);
    assert.match(kv, /Dedupnew/);
    assert.match(kv, /Handlerhelp/); // the name of the config rule that answered
    assert.match(kv, /Deliveries1/);
    assert.match(kv, /Peer address127\.0\.0\.1:\d+/);
    // What WeChat sent, as the server's record carries it: the query, the headers, and
    // admission's checks in order.
    const diag = detail.locator('#detail-diag');
    const query = await diag.locator('dl.pairs').first().textContent();
    for (const name of ['signature', 'timestamp', 'nonce', 'openid', 'encrypt_type', 'aes', 'msg_signature']) assert.ok(query.includes(name), `${name} in ${query}`);
    assert.match(await diag.locator('dl.pairs').nth(1).textContent(), /content-type/);
    const checks = await diag.locator('.checks li').allTextContents();
    assert.ok(checks.length >= 5, checks.join('\n'));
    assert.ok(checks.every((c) => c.startsWith('✓')), checks.join('\n'));
    assert.ok(checks.some((c) => /^✓ msg_signature: /.test(c)) && checks.some((c) => /^✓ decryption: /.test(c)), checks.join('\n'));
    assert.match(await detail.locator('#detail-raw').textContent(), /<Content><!\[CDATA\[help\]\]><\/Content>/);
    assert.match(await detail.locator('#detail-reply').textContent(), /order 42/);
    await shot(page, 'log-desktop.png', DESKTOP);
    await page.keyboard.press('Escape');
    assert.equal(await detail.isVisible(), false);
  });

  test('phone width: chat and log fit the screen', async () => {
    await page.setViewportSize(PHONE);
    await page.getByRole('link', { name: 'Chat' }).click();
    await page.getByRole('button', { name: 'Switch to keyboard' }).click();
    await page.getByLabel('Message').fill('你好');
    await page.getByLabel('Message').press('Enter');
    await page.locator('.msg.bot .bubble', { hasText: 'Sorry, I did not understand' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px at phone width`);
    await page.getByRole('button', { name: 'Switch to the account menu' }).click();
    await shot(page, 'chat-phone.png', PHONE);
    await page.getByRole('link', { name: /Live log/ }).click();
    await page.locator('#log-rows tr').first().waitFor();
    await shot(page, 'log-phone.png', PHONE);
    await page.setViewportSize(DESKTOP);
  });

  test('setup: paste values, AES key masked until revealed, wemp doctor\'s checks, rules reload', async () => {
    await page.getByRole('link', { name: 'Setup' }).click();
    const paste = page.locator('#paste');
    await paste.getByText(TOKEN).waitFor();
    assert.match(await paste.textContent(), new RegExp(`${server.url.replace(/[.]/g, '\\.')}/wechat`));
    const key = page.locator('#aes-key');
    assert.doesNotMatch(await key.textContent(), /efghijklmnop/);
    assert.equal(await page.getByRole('button', { name: /^Copy / }).count(), 4);
    await page.getByRole('button', { name: 'Reveal' }).click();
    await page.locator('#aes-key', { hasText: AES_KEY }).waitFor();
    // `wemp doctor`'s checks, run by the server with its own configuration.
    await page.locator('#checks .check.pass', { hasText: 'configuration' }).waitFor();
    await page.locator('#checks .check.pass', { hasText: 'EncodingAESKey' }).waitFor();
    await page.locator('#checks .check.pass', { hasText: 'access token' }).waitFor();
    await page.locator('#checks .check.pass', { hasText: 'customer-service API' }).waitFor();
    await page.locator('#checks .check.skip', { hasText: 'redis' }).waitFor();
    // The example config's rules, the slow one with its delay.
    assert.equal(await page.locator('#rules-rows tr').count(), 15);
    await page.locator('#rules-rows tr', { hasText: 'menu: a slow answer' }).getByText('after a 6s delay').waitFor();
    await page.getByRole('button', { name: 'Reload rules' }).click();
    await page.locator('#reload-status.ok', { hasText: 'Reloaded: 15 rules in effect' }).waitFor();
    // No [component] in the example config: no authorizers panel (nor an error in it).
    assert.equal(await page.locator('#authorizers-panel').isHidden(), true);
    await shot(page, 'setup-desktop.png', DESKTOP);
  });

  test('state-changing requests without the CSRF token are refused', async () => {
    const status = await page.evaluate(async (user) => {
      const r = await fetch('/console/api/send', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user, action: { kind: 'text', content: 'x' } }),
      });
      return r.status;
    }, ALICE);
    assert.equal(status, 403);
  });

  test('image: the upload is shown in the chat and posted as an image message', async () => {
    await page.getByRole('link', { name: 'Chat' }).click();
    // A 1×1 PNG.
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');
    await page.locator('#image-file').setInputFiles({ name: 'dot.png', mimeType: 'image/png', buffer: png });
    const sent = page.locator('.msg.me img.sent-img').last();
    await sent.waitFor();
    await page.locator('.msg.bot .media-box', { hasText: 'THANKS_IMAGE_MEDIA_ID' }).waitFor();
    assert.ok(await sent.evaluate((img) => img.complete && img.naturalWidth === 1), 'the uploaded image is shown');
  });

  test('clear this chat empties the conversation shown', async () => {
    await page.getByRole('link', { name: 'Chat' }).click();
    assert.ok(await page.locator('#messages .msg').count() > 0, 'the chat has messages to clear');
    await page.getByRole('button', { name: 'Clear this chat' }).click();
    assert.equal(await page.locator('#messages .msg').count(), 0);
    await page.locator('#messages .hint-notice').waitFor();
  });

  test('the AppSecret never reaches the page; no script errors', async () => {
    const bodies = await page.evaluate(async () => Promise.all(
      ['config', 'setup', 'doctor', 'rules', 'history'].map(async (p) => {
        // The doctor has side effects (it fetches a token): POST with the page's CSRF token.
        const init = p === 'doctor'
          ? { method: 'POST', headers: { 'X-Wemp-Csrf': document.querySelector('meta[name="wemp-csrf"]').content } }
          : {};
        const res = await fetch(`/console/api/${p}`, init);
        return `${res.status} ${await res.text()}`;
      }),
    ));
    for (const b of bodies) assert.ok(b.startsWith('200 '), `a console API answered ${b.slice(0, 80)}`);
    for (const b of [await page.content(), ...bodies]) assert.ok(!b.includes(APPSECRET), 'AppSecret leaked');
    assert.deepEqual(errors, []);
  });
});

/**
 * The texts of the page's own elements that are still English in a Chinese page: every
 * element whose whole text (or aria-label, title, placeholder) is one of the English table's
 * strings that the Chinese table says differently.
 */
async function untranslated(page) {
  const english = new Set(Object.entries(STRINGS.en)
    .filter(([k, v]) => !v.includes('{') && STRINGS['zh-CN'][k] !== v)
    .map(([, v]) => v.trim()));
  const seen = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('body *')) {
      if (el.closest('[hidden], dialog:not([open]), .xml, code, [translate="no"]')) continue;
      if (el.children.length === 0 && el.textContent.trim()) out.push(el.textContent.trim());
      for (const a of ['aria-label', 'title', 'placeholder']) if (el.getAttribute(a)) out.push(el.getAttribute(a).trim());
    }
    return out;
  });
  return [...new Set(seen.filter((x) => english.has(x)))];
}

describe('the console in Chinese: the browser speaks zh-CN', () => {
  const served = servedConsole('zh-CN');
  let server;
  let page;
  let errors;
  before(() => ({ server, page, errors } = served));

  test('both languages have every string, and the same {params}', () => {
    const en = STRINGS.en;
    const zh = STRINGS['zh-CN'];
    const own = (table) => Object.keys(table).filter((k) => !k.startsWith('server.')).sort();
    assert.deepEqual(own(zh), own(en));
    assert.deepEqual(Object.keys(en).filter((k) => k.startsWith('server.')), [], 'the server\'s English is its own');
    const params = (s) => (s.match(/\{\w+\}/g) || []).sort();
    for (const k of Object.keys(en)) assert.deepEqual(params(zh[k]), params(en[k]), k);
  });

  test('chat: labels, the user\'s notices and the simulator\'s tries in Chinese', async () => {
    await page.goto(`${server.url}/console/`);
    await page.getByRole('menuitem', { name: 'News' }).waitFor(); // the account's own menu, as configured
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
    assert.equal(await page.title(), 'wemp 控制台');
    for (const tab of ['聊天', '实时日志', '配置']) await page.getByRole('link', { name: tab }).waitFor();
    await page.locator('#live.on', { hasText: '实时' }).waitFor();
    assert.match(await page.locator('#deliveries-h + .hint').textContent(), /签名并加密（安全模式）后推送到 http:.*\/wechat：每次请求 5 秒未应答即放弃，共尝试 3 次。/);
    await page.getByRole('button', { name: '切换到键盘' }).click();
    await page.getByLabel('消息', { exact: true }).fill('help');
    await page.getByRole('button', { name: '发送' }).click();
    await page.locator('.msg.bot .bubble', { hasText: 'Send "order 42"' }).waitFor();
    await page.locator('.try-item .try-head', { hasText: '文本“help”' }).waitFor();
    assert.match(await page.locator('.try-item .try-list li').first().textContent(), /^第 1 次，\+0 毫秒：HTTP 200，用时 \d+ 毫秒$/);
    await page.getByRole('button', { name: '更多操作' }).click();
    await page.getByRole('button', { name: '关注', exact: true }).click();
    await page.locator('.notice', { hasText: '你关注了公众号' }).waitFor();
    await page.locator('.msg.bot .bubble', { hasText: `Welcome, ${ALICE}!` }).waitFor();
    await page.getByRole('button', { name: '切换到公众号菜单' }).click();
    await page.getByRole('menuitem', { name: 'News' }).click();
    await page.locator('.notice', { hasText: '你点击了菜单「News」（NEWS）' }).waitFor();
    await page.locator('.news-card').first().waitFor();
    // A handler past the deadline: the explanation and the late reply, in Chinese.
    await page.getByRole('menuitem', { name: /More/ }).click();
    await page.getByRole('menuitem', { name: 'Slow reply (6 s)' }).click();
    const deadline = page.locator('.notice.deadline');
    await deadline.waitFor({ timeout: 15_000 });
    assert.match(await deadline.textContent(), /^服务器在截止时间应答了“success”（4\.\d 秒）：处理程序仍在运行/);
    await page.locator('.notice.late', { hasText: /^延迟回复已在 \d\.\d 秒后以客服消息发出：$/ }).waitFor({ timeout: 15_000 });
    assert.deepEqual(await untranslated(page), []);
    await shot(page, 'chat-desktop.zh-CN.png', DESKTOP);
    // The server refuses an upload with a code: the page says why in Chinese.
    await page.locator('#image-file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') });
    await page.locator('#toast', { hasText: '上传失败：只能上传图片（Content-Type image/…）' }).waitFor();
  });

  test('live log: filters, outcomes, modes and the delivery\'s details in Chinese', async () => {
    await page.getByRole('link', { name: /实时日志/ }).click();
    const row = page.locator('#log-rows tr', { has: page.locator('td.col-summary', { hasText: 'help' }) }).first();
    await row.waitFor();
    assert.equal(await row.locator('.badge').textContent(), '被动回复');
    assert.match(await row.textContent(), /安全模式/);
    await page.getByLabel('结果').selectOption({ label: '被动回复' });
    await row.click();
    const kv = await page.locator('#detail-kv').textContent();
    for (const want of ['接收时间', '用户', '类型', '模式安全模式', '结果被动回复', '排重首次推送', '推送次数1', '处理程序help', '耗时', '对端地址', '来源服务器观察者']) {
      assert.ok(kv.includes(want), `${want} in ${kv}`);
    }
    await page.locator('#detail h3', { hasText: '消息（已解密）' }).waitFor();
    // Admission's checks in Chinese: the kinds and what they found, no English note shown.
    await page.locator('#detail h3', { hasText: '接入检查' }).waitFor();
    await page.locator('#detail h3', { hasText: '查询参数（微信发来的原样）' }).waitFor();
    const checks = await page.locator('#detail .checks li').allTextContents();
    assert.ok(checks.some((c) => c.startsWith('✓ 消息签名(msg_signature)：与公众号的令牌(Token)')), checks.join('\n'));
    for (const c of checks) assert.doesNotMatch(c, /[a-z]{4,} [a-z]{3,}/, `an English sentence: ${c}`);
    assert.deepEqual(await untranslated(page), []);
    await shot(page, 'log-phone.zh-CN.png', PHONE);
    await page.setViewportSize(DESKTOP);
    await page.getByRole('button', { name: '关闭详情' }).click();
  });

  test('setup: WeChat\'s own terms for what to paste, the checks\' verdicts, the rules', async () => {
    await page.getByRole('link', { name: '配置' }).click();
    await page.getByRole('heading', { name: '填写到微信开发者平台' }).waitFor();
    const paste = page.locator('#paste');
    await paste.getByText(TOKEN).waitFor();
    const terms = await paste.locator('dt').allTextContents();
    assert.deepEqual(terms, ['服务器地址(URL)', '令牌(Token)', '消息加解密密钥(EncodingAESKey)', '消息加解密方式']);
    assert.match(await paste.textContent(), /安全模式/);
    assert.equal(await page.getByRole('button', { name: /^复制/ }).count(), 4);
    await page.getByRole('button', { name: '显示' }).click();
    await page.locator('#aes-key', { hasText: AES_KEY }).waitFor();
    await page.locator('#checks .check.pass .badge', { hasText: '通过' }).first().waitFor();
    // Names and findings as the doctor words them in Chinese (wemp_cli::i18n, their one home).
    for (const name of ['配置', '消息加解密密钥（EncodingAESKey）', 'access_token', '客服消息接口']) {
      await page.locator('#checks .check.pass strong', { hasText: name }).waitFor();
    }
    // The findings too, worded by the doctor in Chinese: no English sentence from the server.
    const token = page.locator('#checks .check.pass', { has: page.locator('strong', { hasText: '令牌' }) });
    assert.match(await token.locator('.detail-text').textContent(), /^\d+ 个字符，字母和数字$/);
    for (const detail of await page.locator('#checks .detail-text').allTextContents()) {
      assert.doesNotMatch(detail, /\b(the|is|are|and|not|with)\b/i, `an English sentence: ${detail}`);
    }
    await page.locator('#checks .check.skip strong', { hasText: 'Redis' }).waitFor();
    await page.getByRole('button', { name: '重新加载规则' }).click();
    // The report too, worded by the page from the server's code and numbers.
    await page.locator('#reload-status.ok', { hasText: '已重新加载：15 条规则生效' }).waitFor();
    assert.deepEqual(await untranslated(page), []);
    await shot(page, 'setup-desktop.zh-CN.png', DESKTOP);
    assert.deepEqual(errors, []);
  });

  test('the language switch overrides the browser, and is remembered', async () => {
    await page.getByLabel('语言').selectOption('en');
    await page.getByRole('link', { name: 'Setup' }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    await page.reload();
    await page.getByRole('link', { name: 'Chat' }).waitFor();
    await page.getByLabel('Language').selectOption('zh-CN');
    await page.getByRole('link', { name: '聊天' }).waitFor();
    assert.deepEqual(errors, []);
  });
});

/**
 * A gateway app on loopback: answers every message with a text naming what it got; fails
 * (500) on `fail please`; answers `two news` with two articles, which WeChat refuses for a
 * message (one allowed).
 */
function gatewayApp() {
  const calls = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const msg = JSON.parse(body);
      calls.push(msg);
      if (msg.content === 'fail please') {
        res.statusCode = 500;
        res.end('boom');
        return;
      }
      res.setHeader('Content-Type', 'application/json');
      if (msg.content === 'two news') {
        const article = { title: 'a', description: 'd', pic_url: 'https://example.com/p.png', url: 'https://example.com/' };
        res.end(JSON.stringify({ reply: { type: 'news', articles: [article, article] } }));
        return;
      }
      res.end(JSON.stringify({ reply: { type: 'text', content: `the app got: ${msg.content}` } }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ server, calls, url: `http://127.0.0.1:${server.address().port}/hook` });
  }));
}

describe('a forwarded delivery: wemp serve in front of an app (gateway mode)', () => {
  for (const locale of ['en-US', 'zh-CN']) {
    test(`the live log shows the JSON sent, the app's answer and its latency (${locale})`, async () => {
      const app = await gatewayApp();
      const dir = mkdtempSync(path.join(tmpdir(), 'wemp-console-e2e-gateway-'));
      dirs.push(dir);
      const config = path.join(dir, 'wemp.toml');
      const settings = `[[accounts]]\nname = "shop"\ntoken = "${TOKEN}"\n\n[gateway]\nforward = "${app.url}"\n`;
      writeFileSync(config, `${settings}\n[[rules]]\nkeyword = "ping"\nreply.text = "pong"\n`);
      const { url } = await startServe({}, config);
      const b = await launch(locale);
      try {
        const page = await b.newPage();
        const errors = watchErrors(page);
        // The page's settings come late (a slow link): a message typed before they arrive is
        // sent once they are there, not dropped.
        let configAsked = 0;
        await page.route('**/console/api/config', async (route) => {
          configAsked += 1;
          if (configAsked === 1) await new Promise((r) => setTimeout(r, 1000));
          await route.continue();
        });
        await page.goto(`${url}/console/`);
        const zh = locale === 'zh-CN';
        // No menu configured: the keyboard is shown at once.
        await page.getByLabel(zh ? '消息' : 'Message', { exact: true }).fill('hello app');
        await page.getByLabel(zh ? '消息' : 'Message', { exact: true }).press('Enter');
        await page.locator('.msg.bot .bubble', { hasText: 'the app got: hello app' }).waitFor();
        assert.equal(app.calls.length, 1);
        // A forged request the server refuses: its reason in the page's language.
        const forged = await page.evaluate(async (u) => (await fetch(`${u}/wechat?signature=forged&timestamp=${Math.floor(Date.now() / 1000)}&nonce=n1`, { method: 'POST', body: '<xml/>' })).status, url);
        assert.equal(forged, 403);

        await page.getByRole('link', { name: zh ? /实时日志/ : /Live log/ }).click();
        const row = page.locator('#log-rows tr', { has: page.locator('td.col-summary', { hasText: 'hello app' }) });
        await row.waitFor();
        await row.click();
        const diag = page.locator('#detail-diag');
        await diag.locator('h3', { hasText: zh ? '转发给应用' : 'Forwarded to the app' }).waitFor();
        const forward = await diag.locator('dl.forward').textContent();
        assert.ok(forward.includes(app.url), forward);
        assert.match(forward, zh ? /结果回复/ : /Resultreply/);
        assert.match(forward, zh ? /应用的 HTTP 状态码200/ : /App’s HTTP status200/);
        assert.match(forward, zh ? /应用耗时\d+ 毫秒/ : /App’s latency\d+ ms/);
        const sent = JSON.parse(await page.locator('#detail-forward-sent').textContent());
        assert.deepEqual(sent, app.calls[0], 'the JSON the app received, as sent');
        assert.equal(sent.content, 'hello app');
        const answer = JSON.parse(await page.locator('#detail-forward-answer').textContent());
        assert.deepEqual(answer, { reply: { type: 'text', content: 'the app got: hello app' } });
        assert.match(await page.locator('#detail-reply').textContent(), /the app got: hello app/);
        await shot(page, zh ? 'log-forward-desktop.zh-CN.png' : 'log-forward-desktop.png', DESKTOP);
        await page.keyboard.press('Escape');

        // The refusal: its query, and the reason worded by the page (no English sentence in Chinese).
        const refused = page.locator('#log-rows tr[data-outcome="rejected"]');
        await refused.waitFor();
        await refused.click();
        const said = await diag.locator('.rejection').textContent();
        if (zh) {
          assert.match(said, /^-40001 签名不符：微信开发者平台（消息推送配置）和服务器配置中的令牌\(Token\)必须相同/);
          assert.deepEqual(await untranslated(page), []);
        } else {
          assert.match(said, /^-40001 .*signature/);
        }
        assert.ok((await diag.locator('dl.pairs').first().textContent()).includes('forged'));

        // The app fails: the chat's server note and the log's detail say so in the page's language.
        await page.getByRole('link', { name: zh ? '聊天' : 'Chat' }).click();
        await page.getByLabel(zh ? '消息' : 'Message', { exact: true }).fill('fail please');
        await page.getByLabel(zh ? '消息' : 'Message', { exact: true }).press('Enter');
        const note = page.locator('.server-notes li', { hasText: app.url });
        await note.first().waitFor();
        const noted = await note.first().textContent();
        if (zh) {
          assert.ok(noted.includes(`应用（${app.url}）返回了 HTTP 500，应为 200 或 204`), noted);
          assert.doesNotMatch(noted, /answered HTTP/);
        } else {
          assert.ok(noted.includes(`app at ${app.url} answered HTTP 500`), noted);
        }
        await page.getByRole('link', { name: zh ? /实时日志/ : /Live log/ }).click();
        const failed = page.locator('#log-rows tr', { has: page.locator('td.col-summary', { hasText: 'fail please' }) });
        await failed.first().waitFor();
        await failed.first().click();
        await diag.locator('dl.forward').waitFor();
        const line = await diag.locator('.error-line').allTextContents();
        assert.deepEqual(line, [zh ? `应用（${app.url}）返回了 HTTP 500，应为 200 或 204` : `app at ${app.url} answered HTTP 500`]);
        await page.keyboard.press('Escape');

        // The app's reply WeChat would refuse: the handler's failure framed in the page's language.
        await page.getByRole('link', { name: zh ? '聊天' : 'Chat' }).click();
        await page.getByLabel(zh ? '消息' : 'Message', { exact: true }).fill('two news');
        await page.getByLabel(zh ? '消息' : 'Message', { exact: true }).press('Enter');
        const unsendable = page.locator('.server-notes li', { hasText: 'news reply has 2 articles' });
        await unsendable.first().waitFor();
        const unsendableSaid = await unsendable.first().textContent();
        assert.match(unsendableSaid, zh ? /处理函数的回复无法发出（微信会拒绝它）：news reply has 2 articles/ : /reply cannot be sent: news reply has 2 articles/);

        // A reload the config refuses: each problem's place and message in the page's language.
        writeFileSync(config, `${settings}\n[[rules]]\nkeyword = "ping"\nregex = "p"\nreply.text = "pong"\n`);
        await page.getByRole('link', { name: zh ? '配置' : 'Setup' }).click();
        await page.getByRole('button', { name: zh ? '重新加载规则' : 'Reload rules' }).click();
        const status = page.locator('#reload-status.bad');
        await status.locator('li').first().waitFor();
        const notReloaded = await status.textContent();
        if (zh) {
          assert.match(notReloaded, /^未重新加载，之前的规则继续生效；配置有 1 处问题：/);
          assert.ok(notReloaded.includes(`${config} 第 8 行，rules[0]：有多个匹配条件（keyword, regex）：一条规则只能有一个`), notReloaded);
          assert.ok(!notReloaded.includes('several matchers'), notReloaded);
        } else {
          assert.match(notReloaded, /^Not reloaded, the previous rules stay in effect; the configuration has 1 problem\(s\):/);
          assert.ok(notReloaded.includes(`${config}:8: rules[0]: several matchers (keyword, regex): a rule has exactly one`), notReloaded);
        }
        assert.deepEqual(errors, []);
      } finally {
        await b.close();
        app.server.close();
      }
    });
  }
});

describe('the error banner, from a wemp serve whose body limit is too small', () => {
  for (const locale of ['en-US', 'zh-CN']) {
    test(`a long text is refused (413) on every try: WeChat's banner with the reason (${locale})`, async () => {
      // server.body_limit may go down to 1KiB, too small for a long text: WeChat would try
      // three times, be refused each time, and show its banner.
      const platform = await fakePlatform();
      const { url } = await startServe({ ...safeEnv(platform), WEMP_BODY_LIMIT: '1KiB' });
      const b = await launch(locale);
      const zh = locale === 'zh-CN';
      const message = zh ? '消息' : 'Message';
      try {
        const page = await b.newPage();
        const errors = watchErrors(page);
        await page.goto(`${url}/console/`);
        await page.getByRole('button', { name: zh ? '切换到键盘' : 'Switch to keyboard' }).click();
        await page.getByLabel(message, { exact: true }).fill('help');
        await page.getByLabel(message, { exact: true }).press('Enter');
        await page.locator('.msg.bot .bubble', { hasText: 'Send "order 42"' }).waitFor();
        await page.getByLabel(message, { exact: true }).fill(`order ${'长'.repeat(600)}`);
        await page.getByLabel(message, { exact: true }).press('Enter');
        const banner = page.locator('.notice.banner');
        await banner.waitFor();
        assert.match(await banner.textContent(), new RegExp(BANNER));
        const why = await banner.locator('.banner-why').first().textContent();
        if (zh) {
          // The reason in the page's words, from the failure's kind the server sent.
          assert.match(why, /3 次尝试都没有得到可用的应答/);
          assert.doesNotMatch(why, /tries failed/);
        } else {
          assert.match(why, /all 3 tries failed/);
          assert.match(why, /HTTP 413/);
          assert.match(why, /exceeds the 1024-byte limit/);
        }
        assert.equal(await page.locator('.try-item.banner .try-list li').count(), 3);
        // The log shows the three refused tries.
        await page.getByRole('link', { name: zh ? /实时日志/ : /Live log/ }).click();
        await page.locator('#log-rows tr[data-outcome="rejected"]').nth(2).waitFor();
        assert.deepEqual(errors, []);
      } finally {
        await b.close();
        platform.server.close();
      }
    });
  }
});

describe('wemp serve beyond loopback', () => {
  test('with a token: refused until the token is entered, then kept in a cookie', async () => {
    const { url, screen } = await startServe({ WEMP_LISTEN: '0.0.0.0:0', WEMP_CONSOLE_TOKEN: 'e2e-admin-token' });
    assert.match(screen, /Web console .*asks once for the admin token/);
    assert.ok(!screen.includes('e2e-admin-token'), 'the first screen must not print the admin token');
    const base = `${url}/console`;
    const b = await launch();
    try {
      const page = await b.newPage();
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
      await page.getByRole('menuitem', { name: 'News' }).waitFor();
      const cookies = await b.cookies();
      const c = cookies.find((x) => x.name === 'wemp_console');
      assert.ok(c && c.httpOnly && c.sameSite === 'Strict', JSON.stringify(cookies));
      assert.ok(!c.value.includes('e2e-admin-token'), 'the cookie must not hold the token');
      // Once per browser: a new page opens straight away.
      const again = await b.newPage();
      assert.equal((await again.goto(`${base}/`)).status(), 200);
    } finally {
      await b.close();
    }
  });

  test('the sign-in page in Chinese: labels and the server\'s messages', async () => {
    const { url } = await startServe({ WEMP_LISTEN: '0.0.0.0:0', WEMP_CONSOLE_TOKEN: 'e2e-admin-token-zh' });
    const b = await launch('zh-CN');
    try {
      const page = await b.newPage();
      const errors = watchErrors(page);
      assert.equal((await page.goto(`${url}/console/`)).status(), 401);
      assert.equal(await page.title(), 'wemp 控制台 — 登录');
      await page.getByText('请输入控制台的管理令牌以继续').waitFor();
      await page.getByText('WEMP_CONSOLE_TOKEN').waitFor();
      await page.getByLabel('管理令牌').fill('wrong');
      await page.getByRole('button', { name: '打开控制台' }).click();
      await page.getByText('令牌错误，请重试').waitFor();
      await page.getByLabel('管理令牌').fill('e2e-admin-token-zh');
      await page.getByRole('button', { name: '打开控制台' }).click();
      await page.getByRole('link', { name: '聊天' }).waitFor();
      assert.deepEqual(errors, []);
    } finally {
      await b.close();
    }
  });

  test('without a token: disabled, with the reason', async () => {
    const { url, screen } = await startServe({ WEMP_LISTEN: '0.0.0.0:0' });
    assert.match(screen, /Web console .*off: listening beyond loopback without an admin token/);
    const b = await launch();
    try {
      const page = await b.newPage();
      const res = await page.goto(`${url}/console/`);
      assert.equal(res.status(), 403);
      await page.getByText('WEMP_CONSOLE_TOKEN').first().waitFor();
      assert.equal(await page.getByLabel('Admin token').isVisible(), false);
      const api = await page.evaluate(async () => (await fetch('/console/api/config')).status);
      assert.equal(api, 403);
    } finally {
      await b.close();
    }
  });
});

describe('wemp serve with two accounts: the console plays either', () => {
  // The example config plus a second account in safe mode, with its own path, Token, appid,
  // EncodingAESKey and original id, and a rule answering with the account WeChat posted to
  // (`{account}` is the message's ToUserName). The first account stays the example's: plain.
  const SHOP = {
    id: 'wx00000000000000b2', token: 'shopToken2024', path: '/wechat/shop', gh: 'gh_5b0p000000b2',
    key: '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg',
  };
  const DEMO_GH = 'gh_000000000000'; // the example's account has no original id
  let server;
  let browser;
  let page;
  let errors;

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'wemp-console-e2e-accounts-'));
    dirs.push(dir);
    const config = path.join(dir, 'wemp.toml');
    writeFileSync(config, [
      '[[rules]]', 'name = "which account"', 'keyword = "whoami"', 'reply.text = "You are talking to {account}."', '',
      readFileSync(EXAMPLE, 'utf8'), '',
      '[[accounts]]', 'name = "shop"', `token = "${SHOP.token}"`, `appid = "${SHOP.id}"`, `aes_key = "${SHOP.key}"`,
      'mode = "safe"', `original_id = "${SHOP.gh}"`, `path = "${SHOP.path}"`, '',
    ].join('\n'));
    server = await startServe({}, config);
    browser = await launch();
    page = await browser.newPage();
    errors = watchErrors(page);
  });

  after(async () => {
    if (browser) await browser.close();
  });

  test('select the second account: its reply, its keys, its tag in the live log', async () => {
    assert.match(server.screen, new RegExp(`URL +${server.url.replace(/[.]/g, '\\.')}/wechat/shop`));
    await page.goto(`${server.url}/console/`);
    const select = page.getByRole('combobox', { name: 'Account to play WeChat for' });
    await select.waitFor();
    assert.deepEqual(await select.locator('option').allTextContents(), ['demo · /wechat', `shop · ${SHOP.path}`]);
    assert.equal(await page.locator('#phone-title').textContent(), 'demo');
    assert.equal(await page.locator('#account .badge.mode').textContent(), 'plain');
    // The menu is the server's one [menu], shown for both accounts, and the page says so.
    await page.getByRole('menuitem', { name: 'News' }).waitFor();
    await page.getByText('every account shows the same buttons').waitFor();

    await select.selectOption(SHOP.id);
    assert.equal(await page.locator('#phone-title').textContent(), 'shop');
    assert.equal(await page.locator('#account .badge.mode').textContent(), 'safe');
    assert.equal(await page.locator('#endpoint-note').textContent(), `${server.url}${SHOP.path}`);
    await page.getByRole('button', { name: 'Switch to keyboard' }).click();
    await page.getByLabel('Message').fill('whoami');
    await page.getByLabel('Message').press('Enter');
    // Signed with the shop's Token, encrypted with its key, posted to its path with its
    // original id as ToUserName: the bot answers as the shop.
    await page.locator('.msg.bot .bubble', { hasText: `You are talking to ${SHOP.gh}.` }).waitFor();
    const delivery = page.locator('.try-item', { hasText: 'text “whoami”' });
    assert.equal(await delivery.locator('.badge.account').textContent(), 'shop');
    assert.match(await delivery.locator('.try-list').textContent(), /try 1 at \+0 ms: HTTP 200/);
    assert.match(await delivery.locator('pre.xml').textContent(), new RegExp(`<ToUserName><!\\[CDATA\\[${SHOP.gh}\\]\\]></ToUserName>`));

    // Each account keeps its own conversation; the first still answers as itself, in plain mode.
    await select.selectOption('demo');
    assert.equal(await page.locator('.msg.bot .bubble', { hasText: SHOP.gh }).count(), 0);
    await page.getByLabel('Message').fill('whoami');
    await page.getByLabel('Message').press('Enter');
    await page.locator('.msg.bot .bubble', { hasText: `You are talking to ${DEMO_GH}.` }).waitFor();
    await select.selectOption(SHOP.id);
    await page.locator('.msg.bot .bubble', { hasText: `You are talking to ${SHOP.gh}.` }).waitFor();

    // The live log tags each delivery with its account (the server's record, decrypted with
    // that account's key) and filters by account.
    await page.getByRole('link', { name: /Live log/ }).click();
    const whoami = page.locator('#log-rows tr', { has: page.locator('td.col-summary', { hasText: 'whoami' }) });
    await whoami.nth(1).waitFor();
    const tags = async () => (await whoami.evaluateAll((rows) => rows.map((r) => [
      r.querySelector('.col-account').textContent, r.children[4].textContent, r.querySelector('.badge').textContent])));
    assert.deepEqual(await tags(), [['demo', 'plain', 'reply'], ['shop', 'safe', 'reply']]);
    const filter = page.getByRole('combobox', { name: 'Account', exact: true });
    await filter.selectOption(SHOP.id);
    assert.deepEqual(await tags(), [['shop', 'safe', 'reply']]);
    for (const t of await page.locator('#log-rows .col-account').allTextContents()) assert.equal(t, 'shop');
    // The filter follows the account selected above it.
    await select.selectOption('demo');
    assert.equal(await filter.inputValue(), 'demo');
    assert.deepEqual(await tags(), [['demo', 'plain', 'reply']]);
    await select.selectOption(SHOP.id);
    await whoami.first().click();
    const kv = await page.locator('#detail-kv').textContent();
    assert.match(kv, new RegExp(`Accountshop \\(${SHOP.id}\\)`));
    assert.match(kv, /Modesafe/);
    assert.match(await page.locator('#detail-raw').textContent(), /<Content><!\[CDATA\[whoami\]\]><\/Content>/);
    await shot(page, 'accounts-log-desktop.png', DESKTOP);
    await page.keyboard.press('Escape');
    await filter.selectOption('');
  });

  test('setup shows the selected account\'s URL, Token and key (masked until revealed)', async () => {
    await page.getByRole('link', { name: 'Setup' }).click();
    const paste = page.locator('#paste');
    await paste.getByText(SHOP.token).waitFor();
    assert.equal(await page.locator('#paste-h').textContent(), 'Paste into the WeChat console: shop');
    assert.match(await paste.textContent(), new RegExp(`${server.url.replace(/[.]/g, '\\.')}${SHOP.path}`));
    assert.doesNotMatch(await page.locator('#aes-key').textContent(), /456789ABCDEF/);
    await page.getByRole('button', { name: 'Reveal' }).click();
    await page.locator('#aes-key', { hasText: SHOP.key }).waitFor();
    const select = page.getByRole('combobox', { name: 'Account to play WeChat for' });
    await select.selectOption('demo');
    await paste.getByText('wempDemoToken2024').waitFor();
    assert.doesNotMatch(await paste.textContent(), /shopToken2024|\/wechat\/shop/);
    await page.getByText('No EncodingAESKey configured').waitFor();
    // An account the server does not have is refused, naming the ones it has.
    const res = await page.evaluate(async () => {
      const csrf = document.querySelector('meta[name="wemp-csrf"]').content;
      const r = await fetch('/console/api/send', {
        method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Wemp-Csrf': csrf },
        body: JSON.stringify({ user: 'oWempTestUser000000000000001', account: 'nope', action: { kind: 'text', content: 'x' } }),
      });
      return [r.status, (await r.json()).error];
    });
    assert.deepEqual(res, [400, `unknown account "nope": this console plays "demo", "${SHOP.id}"`]);
    assert.deepEqual(errors, []);
  });

  test('phone width: the account selector stays reachable', async () => {
    await page.setViewportSize(PHONE);
    await page.getByRole('link', { name: 'Chat' }).click();
    const select = page.getByRole('combobox', { name: 'Account to play WeChat for' });
    assert.ok(await select.isVisible());
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px at phone width`);
    await select.selectOption(SHOP.id);
    await shot(page, 'accounts-chat-phone.png', PHONE);
    await page.setViewportSize(DESKTOP);
  });
});

describe('wemp serve with an Official Account, a WeCom app and a Mini Program: the console per kind', () => {
  // One server for the three kinds (issue 13): the WeCom app's callbacks are encrypted for its
  // corpid and carry its AgentID; the Mini Program's replies go out through the fake
  // platform's customer-service API.
  const CORP = { id: 'ww0123456789abcdef/1000002', corpid: 'ww0123456789abcdef', agentid: '1000002' };
  const MINI = { id: 'wx00000000000000c3', secret: 'e2eMiniSecretNeverOnThePage01' };
  // A service provider's suite (第三方应用): a WeCom account with no AgentID, its corpid the SuiteID.
  const SUITE = { id: 'wwsuite0123456789abcd' };
  let platform;
  let server;
  let browser;
  let page;
  let errors;

  before(async () => {
    platform = await fakePlatform();
    const dir = mkdtempSync(path.join(tmpdir(), 'wemp-console-e2e-kinds-'));
    dirs.push(dir);
    const config = path.join(dir, 'wemp.toml');
    writeFileSync(config, [
      '[[accounts]]', 'name = "news desk"', 'token = "oaToken2024"', 'path = "/wechat"', '',
      '[[accounts]]', 'kind = "wecom"', 'name = "helpdesk"', `corpid = "${CORP.corpid}"`, `agentid = "${CORP.agentid}"`,
      'token = "corpToken2024"', 'aes_key = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"', 'path = "/wechat/corp"', '',
      '[[accounts]]', 'kind = "miniprogram"', 'name = "mini shop"', `appid = "${MINI.id}"`, 'token = "miniToken2024"',
      'aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"', 'mode = "safe"', `appsecret = "${MINI.secret}"`,
      'path = "/wechat/mini"', '',
      '[[accounts]]', 'kind = "wecom"', 'name = "crm suite"', `corpid = "${SUITE.id}"`, 'token = "suiteToken2024"',
      'aes_key = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"', 'path = "/wechat/suite"', '',
      '[[rules]]', 'name = "price"', 'keyword = "price"', 'reply.text = "It costs 1 yuan."', '',
    ].join('\n'));
    server = await startServe({ WEMP_API_BASE: platform.url }, config);
  });

  after(async () => {
    if (browser) await browser.close();
    if (platform) platform.server.close();
  });

  async function open(locale) {
    if (browser) await browser.close();
    browser = await launch(locale);
    page = await browser.newPage();
    errors = watchErrors(page);
    await page.goto(`${server.url}/console/`);
    await page.locator('#live.on').waitFor();
    await page.locator('#account-select').waitFor();
  }

  async function say(text) {
    if (await page.locator('#to-keyboard').isVisible()) await page.locator('#to-keyboard').click();
    await page.locator('#text').fill(text);
    await page.locator('#text').press('Enter');
  }

  test('a WeCom app: its name, 企业微信 and its AgentID in the header; the reply sealed for the corp', async () => {
    await open('en-US');
    const first = await page.locator('#phone-title').textContent();
    assert.equal(first, 'news desk', 'an Official Account keeps the plain header');
    assert.equal(await page.locator('#phone').getAttribute('data-kind'), 'official_account');
    await page.locator('#account-select').selectOption(CORP.id);
    assert.equal(await page.locator('#phone').getAttribute('data-kind'), 'wecom');
    assert.equal(await page.locator('#phone-title').textContent(), `helpdesk${'WeCom (企业微信) · AgentID 1000002'}`);
    assert.equal(await page.locator('#phone-kind').textContent(), 'WeCom (企业微信) · AgentID 1000002');
    assert.ok(await page.locator('#kind-note').isHidden());
    await say('price');
    // WeCom takes a passive reply: the bubble is the rule's text, no customer-service note.
    await page.locator('.msg.bot .bubble', { hasText: 'It costs 1 yuan.' }).waitFor();
    assert.equal(await page.locator('.via-cs').count(), 0);
    const delivery = page.locator('.try-item', { hasText: 'text “price”' });
    assert.match(await delivery.locator('pre.xml').textContent(), /<AgentID>1000002<\/AgentID>/);
    await shot(page, 'kinds-wecom-desktop.png', DESKTOP);
    // Setup: WeCom's admin console and what to paste there; no mode (WeCom always encrypts).
    await page.getByRole('link', { name: 'Setup' }).click();
    await page.locator('#paste').getByText('corpToken2024').waitFor();
    assert.equal(await page.locator('#paste-h').textContent(), 'Paste into the WeCom admin console: helpdesk');
    assert.match(await page.locator('#setup-where').textContent(), /work\.weixin\.qq\.com\) → 应用管理 .* AgentID 1000002 → 接收消息 .* → 设置API接收/);
    assert.doesNotMatch(await page.locator('#paste').textContent(), /Encryption mode|消息加解密方式/);
    await page.locator('#account-select').selectOption(MINI.id);
    await page.locator('#paste').getByText('miniToken2024').waitFor();
    assert.equal(await page.locator('#paste-h').textContent(), 'Paste into the Mini Program admin console: mini shop');
    assert.match(await page.locator('#setup-where').textContent(), /mp\.weixin\.qq\.com\) → 管理 .* → 开发管理 .* → 消息推送配置/);
    await page.locator('#account-select').selectOption(CORP.id);
    await page.getByRole('link', { name: 'Chat' }).click();
  });

  test('a Mini Program: success at once, the reply a customer-service message in the chat and the live log', { timeout: 30_000 }, async () => {
    await page.locator('#account-select').selectOption(MINI.id);
    assert.equal(await page.locator('#phone').getAttribute('data-kind'), 'miniprogram');
    assert.equal(await page.locator('#phone-kind').textContent(), 'Mini Program (小程序) · replies via customer-service API');
    assert.match(await page.locator('#kind-note').textContent(), /takes no passive reply/);
    await say('price');
    const answered = page.locator('.notice.deadline.cs');
    await answered.waitFor({ timeout: 15_000 });
    assert.match(await answered.textContent(), /Answered “success” at once \(\d\.\d s\): a Mini Program takes no passive reply/);
    assert.doesNotMatch(await answered.textContent(), /deadline|still running/);
    await page.locator('.notice.late.cs', { hasText: 'Sent through the customer-service API after' }).waitFor({ timeout: 15_000 });
    const bubble = page.locator('.msg.bot.cs .bubble', { hasText: 'It costs 1 yuan.' });
    await bubble.waitFor();
    assert.equal(await bubble.locator('.via-cs').textContent(), 'customer-service message');
    const cs = platform.sent.find((m) => m.touser === ALICE && m.msgtype === 'text' && /1 yuan/.test(m.text.content));
    assert.ok(cs, `no customer-service message reached the platform: ${JSON.stringify(platform.sent)}`);

    // The live log: the push answered success by design, then the customer-service delivery.
    await page.getByRole('link', { name: /Live log/ }).click();
    const rows = page.locator('#log-rows tr', { has: page.locator('.col-account', { hasText: 'mini shop' }) });
    await rows.nth(1).waitFor();
    const badges = await rows.locator('td .badge:not(.account)').allTextContents();
    assert.deepEqual(badges.sort(), ['customer-service message', 'success (reply via API)']);
    await rows.filter({ has: page.locator('.badge', { hasText: 'customer-service message' }) }).click();
    assert.match(await page.locator('#detail-diag .remark').textContent(), /sent through the customer-service API \(message\/custom\/send\)/);
    await page.keyboard.press('Escape');
    await rows.filter({ has: page.locator('.badge', { hasText: 'success (reply via API)' }) }).click();
    assert.match(await page.locator('#detail-diag .remark').textContent(), /A Mini Program takes no passive reply: “success” was answered/);
    await page.keyboard.press('Escape');
    await shot(page, 'kinds-miniprogram-log-desktop.png', DESKTOP);
    await page.getByRole('link', { name: 'Chat' }).click();
    assert.deepEqual(errors, []);
  });

  test('in Chinese: 企业微信 and 小程序 in the header, 客服消息 in the chat', { timeout: 30_000 }, async () => {
    await open('zh-CN');
    await page.locator('#account-select').selectOption(CORP.id);
    assert.equal(await page.locator('#phone-kind').textContent(), '企业微信 · AgentID 1000002');
    await page.locator('#account-select').selectOption(MINI.id);
    assert.equal(await page.locator('#phone-kind').textContent(), '小程序 · 回复经客服消息接口发出');
    assert.match(await page.locator('#kind-note').textContent(), /小程序不接受被动回复/);
    await say('price');
    await page.locator('.notice.deadline.cs', { hasText: '已立即应答“success”' }).waitFor({ timeout: 15_000 });
    await page.locator('.notice.late.cs', { hasText: '通过客服消息接口发出' }).waitFor({ timeout: 15_000 });
    const bubble = page.locator('.msg.bot.cs .bubble', { hasText: 'It costs 1 yuan.' });
    await bubble.waitFor();
    assert.equal(await bubble.locator('.via-cs').textContent(), '客服消息');
    assert.deepEqual(errors, []);
  });

  test('a suite (no AgentID): its SuiteID in the header, its 指令回调URL in the service provider admin', async () => {
    for (const [locale, kind, heading, where] of [
      ['en-US', 'WeCom third-party app (第三方应用) · SuiteID wwsuite0123456789abcd',
        'Paste into the WeCom service provider admin: crm suite',
        /sealed for its SuiteID wwsuite0123456789abcd .*open\.work\.weixin\.qq\.com\) → 应用管理 .* → 回调配置 .* → 指令回调URL/],
      ['zh-CN', '企业微信第三方应用 · SuiteID wwsuite0123456789abcd', '填写到企业微信服务商管理后台：crm suite',
        /按 SuiteID wwsuite0123456789abcd 加密.*open\.work\.weixin\.qq\.com）→ 应用管理 → 该应用 → 回调配置 → 指令回调URL/],
    ]) {
      await open(locale);
      await page.locator('#account-select').selectOption(SUITE.id);
      assert.equal(await page.locator('#phone-kind').textContent(), kind);
      await page.locator('#tab-setup').click();
      await page.locator('#paste').getByText('suiteToken2024').waitFor();
      assert.equal(await page.locator('#paste-h').textContent(), heading);
      const text = await page.locator('#setup-where').textContent();
      assert.match(text, where);
      assert.doesNotMatch(text, /AgentID (\?|undefined)|AgentID 为 (\?|undefined)|\{/);
      assert.deepEqual(errors, []);
    }
  });
});

describe('wemp serve as a third-party platform: the console plays its authorizers', () => {
  // One account of its own and a [component]: an account authorizes the platform through the
  // authorization page's redirect (the fake exchanges its code), then the console offers it
  // next to the configured account, chats as one of its users (signed with the component's
  // Token, sealed with its key for the component appid, posted to /wechat/<authorizer
  // appid>), and the setup page lists it, in English and in Chinese.
  let platform;
  let server;
  let browser;
  let page;
  let errors;

  before(async () => {
    ({ platform, server } = await startPlatform('component', [
      '[[accounts]]', 'name = "news desk"', 'token = "oaToken2024"', '',
    ]));
    await pushTicket(server);
  });

  after(async () => {
    if (browser) await browser.close();
    if (platform) platform.server.close();
  });

  async function open(locale) {
    if (browser) await browser.close();
    browser = await launch(locale);
    page = await browser.newPage();
    errors = watchErrors(page);
  }

  async function say(text) {
    if (await page.locator('#to-keyboard').isVisible()) await page.locator('#to-keyboard').click();
    await page.locator('#text').fill(text);
    await page.locator('#text').press('Enter');
  }

  test('an account authorizes; the chat offers it and plays WeChat for it', async () => {
    await open('en-US');
    // The administrator comes back from the authorization page with the code.
    const res = await page.goto(`${server.url}/component/authorized?auth_code=${encodeURIComponent(AUTHORIZER.code)}&expires_in=3600`);
    assert.equal(res.status(), 200);
    await page.getByRole('heading', { name: 'Authorization complete' }).waitFor();
    assert.deepEqual(platform.exchanges, [AUTHORIZER.code]);

    await page.goto(`${server.url}/console/`);
    await page.locator('#live.on').waitFor();
    const select = page.getByRole('combobox', { name: 'Account to play WeChat for' });
    assert.deepEqual(await select.locator('option').allTextContents(),
      ['news desk · /wechat', `${AUTHORIZER.gh} · /wechat/${AUTHORIZER.appid} · authorizer`]);
    await select.selectOption(AUTHORIZER.appid);
    assert.equal(await page.locator('#phone-title').textContent(), AUTHORIZER.gh);
    assert.equal(await page.locator('#account .badge.mode').textContent(), 'safe');
    assert.equal(await page.locator('#endpoint-note').textContent(), `${server.url}/wechat/${AUTHORIZER.appid}`);
    await say('price');
    await page.locator('.msg.bot .bubble', { hasText: 'It costs 1 yuan.' }).waitFor();
    const delivery = page.locator('.try-item', { hasText: 'text “price”' });
    assert.equal(await delivery.locator('.badge.account').textContent(), AUTHORIZER.gh);
    assert.match(await delivery.locator('.try-list').textContent(), /try 1 at \+0 ms: HTTP 200/);
    assert.match(await delivery.locator('pre.xml').textContent(), new RegExp(`<ToUserName><!\\[CDATA\\[${AUTHORIZER.gh}\\]\\]></ToUserName>`));
    // The server's record, tagged with the authorizer in the live log.
    await page.getByRole('link', { name: /Live log/ }).click();
    const row = page.locator('#log-rows tr', { has: page.locator('td.col-summary', { hasText: 'price' }) });
    await row.first().waitFor();
    assert.equal(await row.first().locator('.col-account').textContent(), AUTHORIZER.gh);
    assert.equal(await row.first().locator('.badge').first().textContent(), 'reply');
    await shot(page, 'component-log-desktop.png', DESKTOP);
    // The configured account still answers as itself.
    await page.getByRole('link', { name: 'Chat' }).click();
    await select.selectOption(await select.locator('option').first().getAttribute('value'));
    await say('price');
    await page.locator('.msg.bot .bubble', { hasText: 'It costs 1 yuan.' }).waitFor();
    assert.deepEqual(errors, []);
  });

  test('setup lists the authorizers and says how the selected one is reached', async () => {
    await page.getByRole('combobox', { name: 'Account to play WeChat for' }).selectOption(AUTHORIZER.appid);
    await page.getByRole('link', { name: 'Setup' }).click();
    const panel = page.locator('#authorizers-panel');
    await panel.locator('#authorizers-rows tr', { hasText: AUTHORIZER.appid }).waitFor();
    assert.equal(await panel.getByRole('heading').textContent(), 'Authorized accounts (third-party platform)');
    const cells = await panel.locator('#authorizers-rows tr').first().locator('td').allTextContents();
    assert.deepEqual(cells.slice(0, 2), [AUTHORIZER.appid, `${AUTHORIZER.nick} · ${AUTHORIZER.gh}`]);
    assert.equal(await panel.locator('#authorizers-rows tr').count(), 1);
    assert.ok(!(await panel.textContent()).includes('refreshtoken@@@e2e'), 'the refresh token reached the page');
    assert.equal(await page.locator('#paste-h').textContent(), `An authorizer of the third-party platform: ${AUTHORIZER.gh}`);
    assert.match(await page.locator('#setup-where').textContent(), new RegExp(`authorized the third-party platform ${COMPONENT.appid}`));
    assert.match(await page.locator('#paste').textContent(), new RegExp(`/wechat/${AUTHORIZER.appid}`));
    assert.doesNotMatch(await page.locator('#paste').textContent(), new RegExp(`${COMPONENT.token}|No EncodingAESKey`));
    await shot(page, 'component-setup-desktop.png', DESKTOP);
    assert.deepEqual(errors, []);
  });

  test('in Chinese: the authorizer in the chat and on the setup page', async () => {
    await open('zh-CN');
    await page.goto(`${server.url}/console/`);
    await page.locator('#live.on').waitFor();
    const select = page.locator('#account-select');
    assert.deepEqual(await select.locator('option').allTextContents(),
      ['news desk · /wechat', `${AUTHORIZER.gh} · /wechat/${AUTHORIZER.appid} · 授权方`]);
    await select.selectOption(AUTHORIZER.appid);
    await say('price');
    await page.locator('.msg.bot .bubble', { hasText: 'It costs 1 yuan.' }).waitFor();
    await page.getByRole('link', { name: '配置' }).click();
    const panel = page.locator('#authorizers-panel');
    await panel.locator('#authorizers-rows tr', { hasText: AUTHORIZER.appid }).waitFor();
    assert.equal(await panel.getByRole('heading').textContent(), '已授权的公众号（第三方平台）');
    assert.deepEqual(await panel.locator('th').allTextContents(), ['AppID', '名称', '授权时间']);
    assert.match(await panel.locator('#authorizers-rows tr').first().textContent(), new RegExp(AUTHORIZER.nick));
    assert.equal(await page.locator('#paste-h').textContent(), `第三方平台的授权方：${AUTHORIZER.gh}`);
    assert.match(await page.locator('#setup-where').textContent(), new RegExp(`已授权第三方平台 ${COMPONENT.appid}`));
    assert.deepEqual(await untranslated(page), []);
    await shot(page, 'component-setup-desktop.zh-CN.png', DESKTOP);
    // The page the redirect opens, in the browser's language: the code is not exchanged twice.
    const res = await page.goto(`${server.url}/component/authorized?auth_code=${encodeURIComponent(AUTHORIZER.code)}`);
    assert.equal(res.status(), 200);
    await page.getByRole('heading', { name: '授权成功' }).waitFor();
    assert.deepEqual(platform.exchanges, [AUTHORIZER.code]);
    assert.deepEqual(errors, []);
  });
});

describe('wemp serve as a third-party platform without accounts of its own: the console before and after an authorization', () => {
  // Only [component] (the usual SaaS deployment): the console starts with no account, says so
  // and how to authorize one, and lists the (no) authorizers; WeChat then pushes `authorized`
  // (sealed as WeChat does) and the open page picks the new account up from the live log,
  // without a reload, and chats as one of its users.
  let platform;
  let server;
  let browser;
  let page;
  let errors;

  before(async () => {
    let config;
    ({ platform, server, config } = await startPlatform('platform-only', []));
    assert.doesNotMatch(server.screen, /wemp sim send/);
    assert.doesNotMatch(readFileSync(config, 'utf8'), /\[\[accounts\]\]/, 'a Token was generated for an account it does not have');
    await pushTicket(server);
  });

  after(async () => {
    if (browser) await browser.close();
    if (platform) platform.server.close();
  });

  async function open(locale) {
    if (browser) await browser.close();
    browser = await launch(locale);
    page = await browser.newPage();
    errors = watchErrors(page);
    await page.goto(`${server.url}/console/`);
    await page.locator('#live.on').waitFor();
  }

  test('in Chinese, before any authorization: no account yet, and how to authorize one', async () => {
    await open('zh-CN');
    const note = page.locator('#no-account-notice');
    assert.equal(await note.textContent(), STRINGS['zh-CN']['chat.no-account']);
    assert.match(await note.textContent(), /wemp component authorize-url --redirect URL/);
    assert.equal(await page.locator('#phone-title').textContent(), '还没有公众号');
    await page.getByRole('link', { name: '配置' }).click();
    const panel = page.locator('#authorizers-panel');
    await panel.locator('#authorizers-rows td.hint').waitFor();
    assert.equal(await panel.locator('#authorizers-rows').textContent(), STRINGS['zh-CN']['authorizers.none']);
    assert.equal(await page.locator('#setup-where').textContent(), STRINGS['zh-CN']['setup.no-account']);
    assert.deepEqual(await untranslated(page), []);
    assert.deepEqual(errors, []);
  });

  test('before any authorization the page says so; an account that authorizes is picked up and chatted with', async () => {
    await open('en-US');
    const note = page.locator('#no-account-notice');
    assert.match(await note.textContent(), /^No account has authorized this third-party platform yet.*wemp component authorize-url --redirect URL/);
    assert.equal(await page.locator('#phone-title').textContent(), 'No account yet');
    // Sending is refused on the page, nothing is posted.
    await page.locator('#text').fill('price');
    await page.locator('#text').press('Enter');
    await page.locator('#toast', { hasText: 'No account has authorized' }).waitFor();
    await page.getByRole('link', { name: 'Setup' }).click();
    const panel = page.locator('#authorizers-panel');
    await panel.locator('#authorizers-rows td.hint', { hasText: 'No account has authorized the platform yet' }).waitFor();
    assert.match(await page.locator('#setup-where').textContent(), /wemp component authorize-url --redirect URL prints the authorization link/);
    assert.equal(await page.locator('#paste').textContent(), '');

    // WeChat pushes `authorized`: the live log shows the push, the page reads its accounts
    // again and finds the authorizer — the setup page's list too — without a reload.
    const now = Math.floor(Date.now() / 1000);
    const authorized = `<xml><AppId><![CDATA[${COMPONENT.appid}]]></AppId><CreateTime>${now}</CreateTime>`
      + `<InfoType><![CDATA[authorized]]></InfoType><AuthorizerAppid><![CDATA[${AUTHORIZER.appid}]]></AuthorizerAppid>`
      + `<AuthorizationCode><![CDATA[${AUTHORIZER.code}]]></AuthorizationCode><AuthorizationCodeExpiredTime>${now + 3600}</AuthorizationCodeExpiredTime>`
      + '<PreAuthCode><![CDATA[preauthcode@@@e2e]]></PreAuthCode></xml>';
    assert.deepEqual(await pushComponent(`${server.url}/component`, authorized), [200, 'success']);
    await panel.locator('#authorizers-rows tr', { hasText: AUTHORIZER.appid }).waitFor();
    await page.locator('#paste', { hasText: `/wechat/${AUTHORIZER.appid}` }).waitFor();
    assert.deepEqual(platform.exchanges, [AUTHORIZER.code]);
    await page.getByRole('link', { name: 'Chat' }).click();
    assert.equal(await page.locator('#phone-title').textContent(), AUTHORIZER.gh);
    assert.equal(await page.locator('#no-account-notice').count(), 0);
    assert.equal(await page.locator('#endpoint-note').textContent(), `${server.url}/wechat/${AUTHORIZER.appid}`);
    await page.locator('#text').fill('price');
    await page.locator('#text').press('Enter');
    await page.locator('.msg.bot .bubble', { hasText: 'It costs 1 yuan.' }).waitFor();
    assert.match(await page.locator('.try-item', { hasText: 'text “price”' }).locator('.try-list').textContent(), /try 1 at \+0 ms: HTTP 200/);
    await shot(page, 'component-only-chat-desktop.png', DESKTOP);
    assert.deepEqual(errors, []);
  });
});
