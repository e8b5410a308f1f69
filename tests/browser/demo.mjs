// Clicks through the local demo page in Debian's chromium (playwright-core, no browser
// download) and saves screenshots. Run by tests/integration/demo_page.rs against a gateway it started:
//
//   node tests/browser/demo.mjs http://127.0.0.1:<port>/ <screenshot dir>
//
// Prints one JSON line of what it checked; never a link or a token.

import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const [url, dir] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  // As the machine's notes say: no sandbox as root, and no background networking on a
  // closed network.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const checks = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  const text = (who, name) => page.textContent(`#${who} [data-field="${name}"]`);
  const waitText = (who, name, want) =>
    page.waitForFunction(
      ([w, n, v]) => {
        const t = document.querySelector(`#${w} [data-field="${n}"]`).textContent;
        return v === null ? t !== "-" : t === v;
      },
      [who, name, want],
      { timeout: 15_000 },
    );

  // Book: one meeting, the same id in both panes.
  await page.click("#book");
  await waitText("practitioner", "meetingId", null);
  await waitText("patient", "meetingId", null);
  const meetingId = await text("practitioner", "meetingId");
  assert.equal(await text("patient", "meetingId"), meetingId);
  checks.sameMeetingId = true;
  // dr-7 of clinic-1 is not in the host directory: the account's default user hosts.
  await waitText("practitioner", "providerHost", "Zoom: the account's default user");
  checks.providerHost = true;

  // Each side asks for its own link: different URLs for the same meeting.
  await page.click('#practitioner [data-action="link"]');
  await page.click('#patient [data-action="link"]');
  await waitText("practitioner", "url", null);
  await waitText("patient", "url", null);
  const hostUrl = await text("practitioner", "url");
  const joinUrl = await text("patient", "url");
  assert.notEqual(hostUrl, joinUrl);
  assert.equal(await text("practitioner", "linkRole"), "host");
  assert.equal(await text("patient", "linkRole"), "participant");
  checks.differentLinks = true;
  await page.screenshot({ path: `${dir}/demo-appointment.png`, fullPage: true });

  // Zoom starts and ends the meeting (signed webhooks through the sandbox): both panes follow
  // the platform's events (the demo org's signed deliveries), not a poll of the meeting.
  await page.click("#zoomStart");
  await waitText("practitioner", "status", "started");
  await waitText("patient", "status", "started");
  await page.click("#zoomEnd");
  await waitText("practitioner", "status", "ended");
  await waitText("patient", "status", "ended");
  checks.statusFollowsWebhooks = ["started", "ended"];

  // A chat call: the patient calls, the practitioner accepts and lands in the same room.
  await page.click('#patient [data-action="call"]');
  // The ring is the conversation.call event delivered to the demo org, not the page's own doing.
  await page.waitForSelector('#practitioner [data-field="incoming"]', { state: "visible" });
  assert.ok((await page.textContent("#log")).includes("event conversation.call"));
  assert.equal(await page.isVisible('#patient [data-field="incoming"]'), false);
  checks.ringsOnConversationCall = true;
  const callId = await page.waitForFunction(
    (old) => {
      const t = document.querySelector('#patient [data-field="meetingId"]').textContent;
      return t !== old ? t : null;
    },
    meetingId,
    { timeout: 15_000 },
  ).then((h) => h.jsonValue());
  await page.click('#practitioner [data-action="accept"]');
  await page.waitForSelector('#practitioner [data-field="incoming"]', { state: "hidden" });
  assert.equal(await text("practitioner", "meetingId"), callId);
  await waitText("practitioner", "linkRole", "host");
  checks.conversationSameRoom = true;
  await page.screenshot({ path: `${dir}/demo-conversation.png`, fullPage: true });
  console.log(JSON.stringify({ ok: true, checks }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, checks, error: String(error.message ?? error).slice(0, 300) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
