// Load page.html in headless Chromium, wait for the message the test publishes,
// and take a screenshot. Usage: node browser.mjs PAGE_URL SCREENSHOT.png CHROMIUM
import { chromium } from "playwright-core";

const [pageUrl, screenshot, executablePath] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu"],
});
try {
  const page = await browser.newPage({ viewport: { width: 800, height: 400 } });
  page.on("console", (msg) => console.error("page:", msg.text()));
  await page.goto(pageUrl);
  await page.waitForFunction(
    () => document.getElementById("status").textContent === "done", null,
    { timeout: 20000 });
  const message = await page.textContent("#message");
  await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ message }));
} finally {
  await browser.close();
}
