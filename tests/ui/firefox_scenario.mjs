// The page's main scenario in Firefox, over WebDriver BiDi (puppeteer-core, no browser download).
//
//   node firefox_scenario.mjs URL JOB_ID FRONTEND_DIR SCREENSHOT
//
// Opens the page, waits until it is live, creates a watcher from the
// training-loss template on JOB_ID, waits for its trigger count to climb
// (matches pushed over the WebSocket), pauses it and waits for "paused".
// Prints one line per step; exits 1 with the error on the first failure.
import { createRequire } from "node:module";
import path from "node:path";

const [url, jobId, frontend, screenshot] = process.argv.slice(2);
const require = createRequire(path.join(frontend, "package.json"));
const puppeteer = require("puppeteer-core");

const TIMEOUT = 60_000;
const step = (what) => console.log(`step: ${what}`);

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: process.env.FIREFOX ?? "/usr/bin/firefox-esr",
  headless: true,
  protocolTimeout: 120_000,
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const errors = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  await page.goto(url + "/");
  await page.waitForFunction(
    () => document.querySelector(".conn")?.textContent.trim() === "● live",
    { timeout: TIMEOUT },
  );
  step("live");

  await page.click("button.primary"); // + New watcher
  const form = "form[aria-label='New watcher']";
  await page.waitForSelector(`${form} select[aria-label='Running job'] option[value='${jobId}']`, {
    timeout: TIMEOUT,
  });
  await page.select(`${form} select[aria-label='Running job']`, jobId);
  await page.waitForSelector(`${form} select[aria-label='Quick template'] option[value='training-loss']`, {
    timeout: TIMEOUT,
  });
  await page.select(`${form} select[aria-label='Quick template']`, "training-loss");
  await page.waitForFunction(
    (f) => [...document.querySelectorAll(`${f} label`)].some(
      (l) => l.textContent.trim().startsWith("Name") && l.querySelector("input")?.value,
    ),
    { timeout: TIMEOUT },
    form,
  );
  // The pattern tester marks the matches in the job's real output.
  await page.waitForFunction(
    (f) => document.querySelector(`${f} .tester mark`)?.textContent.includes("Epoch"),
    { timeout: TIMEOUT },
    form,
  );
  step("template rendered, matches highlighted");
  await page.click(`${form} summary`);
  for (const [label, value] of [["Poll every (s)", "0.5"], ["Max triggers (0 = unlimited)", "0"]]) {
    const input = await page.waitForFunction(
      (f, text) => [...document.querySelectorAll(`${f} label`)]
        .find((l) => l.textContent.trim().startsWith(text))?.querySelector("input"),
      { timeout: TIMEOUT },
      form,
      label,
    );
    await input.click({ count: 3 });
    await input.type(value);
  }
  const create = await page.waitForFunction(
    (f) => [...document.querySelectorAll(`${f} button`)].find((b) => b.textContent.trim() === "Create watcher"),
    { timeout: TIMEOUT },
    form,
  );
  await create.click();
  await page.waitForFunction(() => document.querySelectorAll("article.card").length === 1, {
    timeout: TIMEOUT,
  });
  step("watcher visible");

  // Matches arrive live and the trigger count climbs.
  await page.waitForFunction(
    () => Number(document.querySelector("article.card .triggers")?.textContent) > 0,
    { timeout: TIMEOUT },
  );
  step("live match arrived");

  const pause = await page.waitForFunction(
    () => [...document.querySelectorAll("article.card button")].find((b) => b.textContent.trim() === "Pause"),
    { timeout: TIMEOUT },
  );
  await pause.click();
  await page.waitForFunction(
    () => document.querySelector("article.card .state")?.textContent.trim() === "paused",
    { timeout: TIMEOUT },
  );
  step("paused");
  await page.screenshot({ path: screenshot, fullPage: true });
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  step("done");
} catch (err) {
  console.log(`error: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
