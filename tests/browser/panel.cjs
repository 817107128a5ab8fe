// The panel in a real headless Chromium, as its owner uses it: first-run setup, a settings
// change, (the Rust test restarts the server here), login, the change still there, "try it"
// with an uploaded WAV, keyboard access, and an axe-core audit of every page.
//
// usage: node panel.cjs BASE_URL PHASE QUESTION_WAV [SETUP_CODE]   (PHASE: setup | after-restart | kiosk)
// env: IRIS_BROWSER_MODULES (a node_modules with playwright-core and axe-core), IRIS_CHROMIUM
"use strict";
const path = require("path");
const modules = process.env.IRIS_BROWSER_MODULES;
const { chromium } = require(path.join(modules, "playwright-core"));
const axePath = path.join(modules, "axe-core", "axe.min.js");
const [base, phase, wav, SETUP_CODE] = process.argv.slice(2);
const PASSWORD = "correct horse battery";

function check(ok, message) {
  if (!ok) throw new Error(message);
}

// Serious and critical axe violations on the page as it is now.
async function audit(page, report) {
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")) }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  report.audited.push({ page: page.url(), violations: result.length, serious: bad.length });
  check(bad.length === 0, `axe on ${page.url()}: ${JSON.stringify(bad)}`);
}

async function main() {
  // The microphone is Chromium's fake capture device playing the question WAV in a loop.
  const browser = await chromium.launch({
    executablePath: process.env.IRIS_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", `--use-file-for-fake-audio-capture=${wav}`,
      // Over HTTPS: trust the box's own certificate, pinned by its public key, and nothing else.
      ...(process.env.IRIS_SPKI ? [`--ignore-certificate-errors-spki-list=${process.env.IRIS_SPKI}`] : [])],
  });
  // axe is injected as a script, which the panel's Content-Security-Policy would rightly refuse.
  const context = await browser.newContext({ bypassCSP: true, permissions: ["microphone"] });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const report = { phase, audited: [] };
  try {
    if (phase === "kiosk") {
      // The kiosk's own screen: no login, no navigation, keyboard only.
      await page.goto(base + "/kiosk");
      await page.waitForLoadState("networkidle");
      check(page.url().endsWith("/kiosk"), `the kiosk went to ${page.url()}`);
      await audit(page, report);
      check(await page.evaluate(() => document.activeElement.id === "talk"), "the kiosk does not start on its talk button");
      report.links = await page.locator("a[href]:not(.skip)").count();
      // Type a question: Tab from the talk button reaches the text field.
      await page.keyboard.press("Tab");
      check(await page.evaluate(() => document.activeElement.id === "kiosk-text"), "Tab does not reach the question field");
      await page.keyboard.type("What is the capital of France?");
      await page.keyboard.press("Enter");
      await page.locator("#kiosk-answer").filter({ hasText: /\w/ }).waitFor({ timeout: 120000 });
      await page.waitForFunction(() => document.getElementById("kiosk-state").textContent === "", null, { timeout: 120000 });
      report.typed_heard = await page.locator("#kiosk-heard").innerText();
      report.typed_answer = await page.locator("#kiosk-answer").innerText();
      // Speak: the talk button, pressed from the keyboard, records the fake microphone.
      await page.locator("#talk").focus();
      await page.keyboard.press("Enter");
      await page.locator("#kiosk-state").filter({ hasText: "Listening" }).waitFor();
      await page.waitForTimeout(3500);
      await page.keyboard.press("Enter");
      await page.locator("#kiosk-heard").filter({ hasText: /\w/ }).waitFor({ timeout: 120000 });
      await page.waitForFunction(() => document.getElementById("kiosk-state").textContent === "", null, { timeout: 120000 });
      report.spoken_heard = await page.locator("#kiosk-heard").innerText();
      report.spoken_answer = await page.locator("#kiosk-answer").innerText();
      await audit(page, report);
      // Left alone, the page clears itself for the next visitor.
      await page.waitForFunction(() => document.getElementById("kiosk-answer").textContent === "", null, { timeout: 30000 });
      report.cleared = (await page.locator("#kiosk-heard").innerText()) === "";
    } else if (phase === "setup") {
      await page.goto(base + "/config");
      check(page.url().endsWith("/setup"), `before setup /config went to ${page.url()}`);
      await audit(page, report);
      // The page opens with the cursor in the setup code field; a wrong code is refused.
      check(await page.evaluate(() => document.activeElement.id === "code"), "setup does not focus the setup code field");
      await page.getByLabel("Setup code").fill("0000-0000-0000");
      await page.getByLabel("New password").fill(PASSWORD);
      await page.getByLabel("Type it again").fill(PASSWORD);
      await page.getByRole("button", { name: "Set password and start" }).click();
      await page.getByRole("alert").filter({ hasText: "setup code is wrong" }).waitFor();
      check(await page.evaluate(() => document.activeElement.id === "code"), "a wrong code does not focus the code field");
      await page.getByLabel("Setup code").fill(SETUP_CODE);
      await page.getByLabel("New password").fill(PASSWORD);
      await page.getByLabel("Type it again").fill("something else");
      await page.getByRole("button", { name: "Set password and start" }).click();
      await page.getByRole("alert").filter({ hasText: "differ" }).waitFor();
      await page.getByLabel("Type it again").fill(PASSWORD);
      await page.keyboard.press("Enter");
      await page.waitForURL(base + "/");
      await page.locator("#models-body tr").first().waitFor();
      report.status_models = await page.locator("#models-body").innerText();
      await audit(page, report);
      // Keyboard: the first Tab reaches the skip link, shown when focused; Enter moves to the content.
      await page.keyboard.press("Tab");
      check(await page.evaluate(() => document.activeElement.className === "skip"), "Tab does not reach the skip link");
      check(await page.evaluate(() => document.activeElement.getBoundingClientRect().left >= 0), "the focused skip link is off screen");
      await page.keyboard.press("Enter");
      check(await page.evaluate(() => document.activeElement.id === "main"), "the skip link does not move focus to the content");

      await page.getByRole("link", { name: "Settings" }).click();
      await page.waitForURL(base + "/config");
      await page.waitForFunction(() => document.getElementById("assistant.name").value !== "");
      await audit(page, report);
      // A bad value is refused naming the field, and focus goes to it.
      await page.getByLabel("Speaking rate").fill("9");
      await page.getByRole("button", { name: "Save settings" }).click();
      await page.getByRole("alert").filter({ hasText: "speech.rate" }).waitFor();
      check(await page.evaluate(() => document.activeElement.id === "speech.rate"), "focus did not go to the bad field");
      await page.getByLabel("Speaking rate").fill("1.1");
      await page.getByLabel("Name", { exact: true }).fill("Ada");
      await page.getByLabel("Persona and system prompt").fill("You are a helpful AI assistant named Ada. Give short, correct answers.");
      // Home Assistant: Wyoming turned on for one host and a range.
      await page.getByLabel("Answer Wyoming clients").check();
      await page.getByLabel("Addresses allowed", { exact: false }).fill("192.168.1.20, 10.0.0.0/8");
      await page.getByRole("button", { name: "Save settings" }).click();
      await page.locator("#config-result").filter({ hasText: "Saved" }).waitFor();
      report.saved = await page.locator("#config-result").innerText();
    } else {
      await page.goto(base + "/");
      check(page.url().endsWith("/login"), `after a restart / went to ${page.url()}`);
      await audit(page, report);
      await page.getByLabel("Password").fill("wrong password");
      await page.keyboard.press("Enter");
      await page.getByRole("alert").filter({ hasText: "wrong password" }).waitFor();
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.waitForURL(base + "/");

      await page.goto(base + "/config");
      await page.waitForFunction(() => document.getElementById("assistant.name").value !== "");
      report.name_after_restart = await page.getByLabel("Name", { exact: true }).inputValue();
      report.prompt_after_restart = await page.getByLabel("Persona and system prompt").inputValue();

      await page.goto(base + "/try");
      await audit(page, report);
      await page.getByLabel("Or upload a WAV file").setInputFiles(wav);
      await page.getByRole("button", { name: "Ask", exact: true }).click();
      await page.locator("#timings").filter({ hasText: "first audio" }).waitFor({ timeout: 120000 });
      report.transcript = await page.locator("#transcript").innerText();
      report.answer = await page.locator("#answer").innerText();
      report.error = await page.locator("#form-error").innerText();
      report.audio_src = (await page.locator("#player").getAttribute("src") || "").slice(0, 22);

      // Speaking into the browser: record about one pass of the question, then ask.
      await page.reload();
      await page.getByRole("button", { name: "Start recording" }).click();
      await page.locator("#record-state").filter({ hasText: "Recording" }).waitFor();
      await page.waitForTimeout(3500);
      await page.getByRole("button", { name: "Stop recording" }).click();
      await page.locator("#record-state").filter({ hasText: "Recorded" }).waitFor();
      report.recorded = await page.locator("#record-state").innerText();
      await page.getByRole("button", { name: "Ask", exact: true }).click();
      await page.locator("#timings").filter({ hasText: "first audio" }).waitFor({ timeout: 120000 });
      report.spoken_transcript = await page.locator("#transcript").innerText();
      report.secure_context = await page.evaluate(() => window.isSecureContext);
      report.spoken_answer = await page.locator("#answer").innerText();

      await page.goto(base + "/");
      await page.locator("#turns li .bar").first().waitFor();
      report.turn_bar = await page.locator("#turns li .bar").first().getAttribute("aria-label");
      for (const p of ["/models", "/logs"]) {
        await page.goto(base + p);
        await page.waitForLoadState("networkidle");
        await audit(page, report);
      }
      report.models_rows = await page.goto(base + "/models").then(() => page.locator("#models-body tr").count());
    }
    check(errors.length === 0, `script errors: ${errors.join("; ")}`);
    console.log(JSON.stringify(report));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(String(e.stack || e));
  process.exit(1);
});
