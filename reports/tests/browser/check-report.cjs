// Load an l1 HTML report in headless Chromium (through playwright-core, with the system's
// /usr/bin/chromium) and check it: no console errors, no page errors, no network requests
// beyond the file itself, the key elements present, table sorting works on click, and a
// full-page screenshot. Prints one JSON object on stdout; exit code 0 only when every check
// passed.
//
// usage: node check-report.cjs REPORT.html SCREENSHOT.png USER_DATA_DIR [--expect-sim]
"use strict";
const path = require("path");
let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch (e) {
  console.log(JSON.stringify({ ok: false, missing: "playwright-core", error: String(e) }));
  process.exit(3);
}

const [html, shot, userData, ...rest] = process.argv.slice(2);
const expectSim = rest.includes("--expect-sim");
const executablePath = process.env.L1_CHROMIUM || "/usr/bin/chromium";

(async () => {
  const problems = [];
  const console_errors = [];
  const requests = [];
  const ctx = await chromium.launchPersistentContext(userData, {
    executablePath,
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") console_errors.push(`${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => console_errors.push(`pageerror: ${e.message}`));
    page.on("request", (r) => requests.push(r.url()));
    const url = "file://" + path.resolve(html);
    await page.goto(url, { waitUntil: "load" });
    // Anything the page did after load (scripts, injected handlers) has run by now.
    await page.waitForTimeout(300);

    const count = (sel) => page.locator(sel).count();
    const checks = {
      title: await page.title(),
      summary: await count("#summary"),
      gate_summary_rows: await count("#gate-summary tbody tr"),
      combo_tables: await count("table.combos"),
      pareto_plots: await count("figure.pareto svg"),
      frontier_paths: await count("path.frontier"),
      winner_marks: await count(".pt.winner"),
      baseline_marks: await count(".pt.baseline"),
      dist_tables: await count("table.dist"),
      trimmed_points: await count("circle.rep.trimmed"),
      effects: await count("figure.effects"),
      provenance: await count("details.provenance"),
      sim_banner: await count("#simulated-banner"),
      unreadable_items: await count("#unreadable li"),
      injected_elements: await count("[data-injected], script[src], img[src='x']"),
    };
    for (const k of ["summary", "combo_tables", "pareto_plots", "dist_tables", "provenance"]) {
      if (!checks[k]) problems.push(`missing: ${k}`);
    }
    if (expectSim && !checks.sim_banner) problems.push("missing: simulated banner");
    if (checks.injected_elements) problems.push(`injected elements: ${checks.injected_elements}`);

    // Sorting: click "vs baseline" in the first combo table; numbers ascend, empty cells last;
    // a second click reverses.
    const table = page.locator("table.combos").first();
    const head = table.locator("thead th", { hasText: "vs baseline" });
    const col = await table.locator("thead th").evaluateAll((ths) =>
      ths.findIndex((t) => t.textContent.trim() === "vs baseline"));
    const values = () => table.locator("tbody tr").evaluateAll((rows, c) =>
      rows.map((r) => r.cells[c].getAttribute("data-v")), col);
    const nums = (v) => v.filter((x) => x !== "" && x !== null).map(Number);
    const sortedAsc = (a) => a.every((x, i) => i === 0 || a[i - 1] <= x);
    await head.click();
    const asc = await values();
    await head.click();
    const desc = await values();
    const ascN = nums(asc), descN = nums(desc);
    checks.sort = { column: col, ascending: asc, descending: desc,
      aria: await head.getAttribute("aria-sort") };
    if (col < 0) problems.push("no 'vs baseline' column");
    if (ascN.length < 2) problems.push("fewer than two comparisons to sort");
    if (!sortedAsc(ascN)) problems.push(`not ascending after one click: ${asc}`);
    if (!sortedAsc(descN.slice().reverse())) problems.push(`not descending after two clicks: ${desc}`);
    const firstEmpty = asc.findIndex((x) => x === "" || x === null);
    if (firstEmpty >= 0 && asc.slice(firstEmpty).some((x) => x !== "" && x !== null)) {
      problems.push("empty cells not sorted last");
    }

    await page.screenshot({ path: shot, fullPage: true });
    const foreign = requests.filter((u) => !u.startsWith("file://") && !u.startsWith("data:"));
    if (foreign.length) problems.push(`network requests: ${foreign.join(", ")}`);
    if (console_errors.length) problems.push(`console errors: ${console_errors.join(" | ")}`);
    const ok = problems.length === 0;
    console.log(JSON.stringify({ ok, problems, console_errors, requests, checks }));
    await ctx.close();
    process.exit(ok ? 0 : 1);
  } catch (e) {
    console.log(JSON.stringify({ ok: false, problems: [String(e && e.stack || e)], console_errors }));
    await ctx.close().catch(() => {});
    process.exit(1);
  }
})();
