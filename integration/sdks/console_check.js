// Drives fwasm's web console in headless Chromium (Debian's, through Playwright's core) as a
// user would: a token, the user's functions, state keys and calls, a call made from the
// form, then the admin's view. Fails on any request to another origin or any page error.
// Prints "console: ok call=<id>" with the id of the call the form made.
//
// Environment: CONSOLE_URL (the upload port's base URL), USER_TOKEN (a token of USER_NAME),
// ADMIN_TOKEN, EARLIER_CALL (a call of USER_NAME's made before), SCREENSHOT (where to save
// it), CHROMIUM (the browser, default /usr/bin/chromium).
"use strict";

const { chromium } = require("playwright-core");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

async function main() {
  const url = env("CONSOLE_URL");
  const origin = new URL(url).origin;
  const user = env("USER_NAME");
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
  const faults = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("request", (request) => {
      if (new URL(request.url()).origin !== origin) faults.push(`fetched ${request.url()}`);
    });
    page.on("pageerror", (error) => faults.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // The refused requests below show up as failed loads; anything else is a fault.
      const text = message.text();
      if (message.type() === "error" && !/status of 40[13]/.test(text)) faults.push(`console: ${text}`);
    });

    // Tokens are on: without one the page says what is missing.
    await page.goto(url);
    await page.locator("#problem").filter({ hasText: "401" }).waitFor();

    // A user's token: its functions, state keys and calls.
    await page.fill("#token", env("USER_TOKEN"));
    await page.fill("#user", user);
    await page.click("#who button");
    await page.locator("#functions tbody td", { hasText: /^echo$/ }).waitFor();
    await page.locator("#keys li", { hasText: "greeting" }).waitFor();
    await page.locator(`#calls tbody tr[data-id="${env("EARLIER_CALL")}"]`).waitFor();
    await page.waitForFunction(() => document.getElementById("problem").hidden);

    // A call from the form: its output, then its row and details among the recent calls.
    await page.selectOption("#function", "echo");
    await page.fill("#input", "from the console");
    await page.click("#invoke button");
    const result = page.locator("#result.SUCCESS", { hasText: "output: from the console" });
    await result.waitFor();
    const call = await result.getAttribute("data-call-id");
    const row = page.locator(`#calls tbody tr[data-id="${call}"]`);
    await row.waitFor();
    await row.click();
    await page.locator("#call-body", { hasText: "output: from the console" }).waitFor();
    // The live figures count the calls.
    const rate = await page.textContent("#rate");
    const p50 = await page.textContent("#p50");
    if (!(Number(rate) > 0) || !p50.endsWith(" ms")) throw new Error(`figures: ${rate} calls/s, p50 ${p50}`);
    await page.screenshot({ path: env("SCREENSHOT"), fullPage: true });

    // The user's token does not reach another user.
    await page.fill("#user", "bob");
    await page.click("#who button");
    await page.locator("#problem").filter({ hasText: "403" }).waitFor();

    // The admin sees every user, and theirs.
    await page.fill("#token", env("ADMIN_TOKEN"));
    await page.fill("#user", user);
    await page.click("#who button");
    await page.locator("#users option[value=bob]").waitFor({ state: "attached" });
    await page.locator(`#users option[value="${user}"]`).waitFor({ state: "attached" });
    await page.locator(`#calls tbody tr[data-id="${call}"]`).waitFor();
    await page.waitForFunction(() => document.getElementById("problem").hidden);

    if (faults.length) throw new Error(faults.join("\n"));
    console.log(`console: ok call=${call}`);
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
