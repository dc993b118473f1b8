// Drives the proxy's admin page in Debian's chromium, the way a person on a phone would: the
// page must list the cached images, and deleting one (confirming the dialog) must remove it.
// Usage: node admin_page.mjs URL USER PASSWORD REPOSITORY_TO_DELETE SCREENSHOT_DIR
// Prints one JSON line: what the page listed before and after, and what it showed.
import { chromium } from "playwright-core";

const [url, username, password, doomed, screenshots] = process.argv.slice(2);
if (!screenshots) {
  console.error("usage: node admin_page.mjs URL USER PASSWORD REPOSITORY SCREENSHOT_DIR");
  process.exit(64);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // The machine has no network beyond loopback: nothing in the background may try to reach out.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const result = {};
try {
  const context = await browser.newContext({
    httpCredentials: { username, password },
    viewport: { width: 390, height: 844 }, // a phone
    isMobile: true,
    hasTouch: true,
  });
  const page = await context.newPage();
  const dialogs = [];
  page.on("dialog", async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.accept();
  });
  const listed = () => page.$$eval("#images tbody tr", (rows) => rows.map((r) => r.dataset.repository));

  await page.goto(url + "/admin/");
  await page.waitForSelector("#images tbody tr", { timeout: 15000 });
  await page.waitForFunction(() => document.getElementById("size").textContent !== "-");
  result.before = await listed();
  result.size = await page.textContent("#size");
  result.imageCount = await page.textContent("#image-count");
  result.upstreams = await page.$$eval("#upstreams tbody tr", (rows) => rows.map((r) => r.innerText));
  result.overflowX = await page.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: `${screenshots}/admin-page-phone.png`, fullPage: true });

  const row = `#images tbody tr[data-repository="${doomed}"]`;
  await page.click(`${row} button.danger`);
  await page.waitForSelector(row, { state: "detached", timeout: 15000 });
  result.dialogs = dialogs;
  result.message = await page.textContent("#message");
  result.after = await listed();
  await page.screenshot({ path: `${screenshots}/admin-page-after-delete.png`, fullPage: true });

  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: `${screenshots}/admin-page-desktop.png`, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
