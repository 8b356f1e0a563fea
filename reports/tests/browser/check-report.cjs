// Load an l1 HTML report in headless Chromium (through playwright-core, with the system's
// /usr/bin/chromium) and check it: no console errors, no page errors, no network requests
// beyond the file itself, the key elements present, table sorting works on click, nothing
// overflowing its box (measured: tables against their containers, cards, cells, SVG labels
// against their SVG, at a wide and a narrow viewport), axe-core finding no serious or critical
// accessibility violation, the summary's verdict lines agreeing with results.json, and a
// full-page screenshot. Prints one JSON object on stdout; exit code 0 only when every check
// passed.
//
// usage: node check-report.cjs REPORT.html SCREENSHOT.png USER_DATA_DIR [--expect-sim]
//          [--results RESULTS.json] [--summary-shot SUMMARY.png]
"use strict";
const path = require("path");
let chromium;
try {
  ({ chromium } = require("playwright-core"));
} catch (e) {
  console.log(JSON.stringify({ ok: false, missing: "playwright-core", error: String(e) }));
  process.exit(3);
}

let axePath;
try {
  axePath = require.resolve("axe-core/axe.min.js");
} catch (e) {
  console.log(JSON.stringify({ ok: false, missing: "axe-core", error: String(e) }));
  process.exit(3);
}

const [html, shot, userData, ...rest] = process.argv.slice(2);
const expectSim = rest.includes("--expect-sim");
const opt = (name) => { const i = rest.indexOf(name); return i >= 0 ? rest[i + 1] : undefined; };
const resultsPath = opt("--results");
const summaryShot = opt("--summary-shot");
const WIDE = { width: 1360, height: 900 };
const NARROW = { width: 760, height: 900 };

// Everything that spills out of its box, measured in the page. Tables must fit their container
// without scrolling at the wide viewport (`strict`); at the narrow one a table may scroll inside
// a wrapper with overflow-x auto/scroll, but nothing may spill out of a card.
function measureOverflow(strict) {
  const out = [];
  const name = (e) => {
    let n = e.tagName.toLowerCase();
    if (e.id) n += "#" + e.id;
    const c = typeof e.className === "string" ? e.className.trim() : "";
    if (c) n += "." + c.split(/\s+/).join(".");
    return n;
  };
  const where = (e) => {
    const parts = [];
    for (let x = e; x && x !== document.body && parts.length < 4; x = x.parentElement) parts.unshift(name(x));
    return parts.join(" > ");
  };
  const scrolls = (e) => ["auto", "scroll"].includes(getComputedStyle(e).overflowX);
  // Cards and sections: their content stays inside.
  for (const e of document.querySelectorAll("section, .card, details, figure, .cards, .plots, #verdicts")) {
    if (e.scrollWidth > e.clientWidth + 1) {
      out.push(`${where(e)}: content ${e.scrollWidth}px wide in a ${e.clientWidth}px box`);
    }
  }
  // Tables against their container.
  for (const t of document.querySelectorAll("table")) {
    const box = t.parentElement;
    const w = Math.ceil(t.getBoundingClientRect().width);
    if (w > box.clientWidth + 1) {
      if (!scrolls(box)) {
        out.push(`${where(t)}: ${w}px wide in a ${box.clientWidth}px container that does not scroll`);
      } else if (strict) {
        out.push(`${where(t)}: ${w}px wide in a ${box.clientWidth}px container (scrolls at ${window.innerWidth}px)`);
      }
    }
  }
  // Cells and labels: text that runs out of its cell (deliberate ellipses excepted: those clip).
  for (const e of document.querySelectorAll("td, th, .tag, .verdict, code, li, figcaption, h2, h3, summary, pre, dd")) {
    const cs = getComputedStyle(e);
    if (cs.display.startsWith("inline") && cs.display !== "inline-block") continue;
    if (cs.overflowX !== "visible") continue;
    if (e.scrollWidth > e.clientWidth + 1) {
      out.push(`${where(e)}: content ${e.scrollWidth}px wide in a ${e.clientWidth}px box`);
    }
  }
  // SVG labels inside their SVG's box (rotated ones too: client rects include transforms).
  for (const svg of document.querySelectorAll("svg")) {
    const b = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll("text")) {
      const r = t.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.left < b.left - 0.5 || r.right > b.right + 0.5 || r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5) {
        out.push(`${where(svg)}: label "${t.textContent.trim()}" at [${r.left.toFixed(1)}, ${r.right.toFixed(1)}] x [${r.top.toFixed(1)}, ${r.bottom.toFixed(1)}] outside its SVG [${b.left.toFixed(1)}, ${b.right.toFixed(1)}] x [${b.top.toFixed(1)}, ${b.bottom.toFixed(1)}]`);
      }
    }
  }
  return out;
}

// The verdict lines as shown: per target, the visible text of each part.
function readVerdicts() {
  return Array.from(document.querySelectorAll("#verdicts .verdict-line")).map((li) => {
    const part = (c) => { const e = li.querySelector("." + c); return e ? e.textContent.trim() : null; };
    return {
      target: li.getAttribute("data-target"),
      text: li.textContent.replace(/\s+/g, " ").trim(),
      verdict: part("v-verdict"),
      winner: part("v-winner"),
      change: part("v-change"),
      lo: part("v-lo"),
      hi: part("v-hi"),
      p_best: part("v-pbest"),
    };
  });
}

// The verdict lines must say what results.json says: the winner (never on a FAIL row), its
// change vs the baseline and the interval, as the page rounds them (one decimal, signed).
function compareVerdicts(lines, results) {
  const problems = [];
  // The page prints one decimal, signed: the shown number must be the value rounded to it.
  const same = (shown, x) => shown !== null && /^[+-]\d+\.\d$/.test(shown) &&
    Math.abs(parseFloat(shown) - x) <= 0.05 + 1e-9;
  if (lines.length !== results.targets.length) {
    problems.push(`${lines.length} verdict lines for ${results.targets.length} targets`);
  }
  for (const t of results.targets) {
    const l = lines.find((x) => x.target === t.id);
    if (!l) { problems.push(`no verdict line for ${t.id}`); continue; }
    const verdict = t.passed === null ? "NONE" : t.passed ? "PASS" : "FAIL";
    if (l.verdict !== verdict) problems.push(`${t.id}: verdict ${l.verdict}, results.json ${verdict}`);
    if (t.passed !== true) {
      if (l.winner !== null) problems.push(`${t.id}: a ${verdict} line names a winner (${l.winner})`);
      continue;
    }
    if ((t.winner || null) !== l.winner) problems.push(`${t.id}: winner ${l.winner}, results.json ${t.winner}`);
    if (!t.winner) continue;
    if (t.p_best !== undefined && t.p_best !== null &&
        !(l.p_best !== null && Math.abs(parseFloat(l.p_best) - t.p_best) <= 0.005 + 1e-9)) {
      problems.push(`${t.id}: P(best) ${l.p_best}, results.json ${t.p_best}`);
    }
    const w = t.combos.find((c) => c.label === t.winner);
    const vs = w && w.vs_baseline;
    if (!vs) {
      if (l.change !== null) problems.push(`${t.id}: change ${l.change} shown, results.json has none`);
      continue;
    }
    if (!same(l.change, vs.improvement_pct)) problems.push(`${t.id}: change ${l.change}, results.json ${vs.improvement_pct}`);
    if (vs.interval_pct) {
      if (!same(l.lo, vs.interval_pct[0]) || !same(l.hi, vs.interval_pct[1])) {
        problems.push(`${t.id}: interval [${l.lo}, ${l.hi}], results.json [${vs.interval_pct}]`);
      }
    } else if (l.lo !== null) {
      problems.push(`${t.id}: interval shown, results.json has none`);
    }
  }
  return problems;
}
const executablePath = process.env.L1_CHROMIUM || "/usr/bin/chromium";

(async () => {
  const problems = [];
  const console_errors = [];
  const requests = [];
  const ctx = await chromium.launchPersistentContext(userData, {
    executablePath,
    headless: true,
    viewport: WIDE,
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
      verdict_lines: await count("#verdicts .verdict-line"),
      latency_tables: await count("table.latency"),
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

    // Layout: nothing overflows its box, at the wide viewport without any table scrolling, at
    // the narrow one with tables scrolling inside their wrappers only.
    const overflowWide = await page.evaluate(measureOverflow, true);
    await page.setViewportSize(NARROW);
    await page.waitForTimeout(100);
    const overflowNarrow = await page.evaluate(measureOverflow, false);
    await page.setViewportSize(WIDE);
    await page.waitForTimeout(100);
    checks.overflow = { wide: overflowWide, narrow: overflowNarrow };
    for (const o of overflowWide) problems.push(`overflow at ${WIDE.width}px: ${o}`);
    for (const o of overflowNarrow) problems.push(`overflow at ${NARROW.width}px: ${o}`);

    // Accessibility: axe-core in the page; serious and critical violations fail.
    await page.addScriptTag({ path: axePath });
    const axe = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ["violations"] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.length, targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
    });
    checks.axe = axe;
    for (const v of axe.filter((v) => v.impact === "serious" || v.impact === "critical")) {
      problems.push(`axe ${v.impact}: ${v.id} (${v.help}) on ${v.nodes} element(s): ${v.targets.join(" | ")}`);
    }

    // The verdict lines against results.json.
    checks.verdicts = await page.evaluate(readVerdicts);
    if (resultsPath) {
      const results = JSON.parse(require("fs").readFileSync(resultsPath, "utf8"));
      for (const p of compareVerdicts(checks.verdicts, results)) problems.push(`verdict line: ${p}`);
      // The count cards say what results.json's totals say (the runner's counts).
      const card = (id) => page.locator("#" + id).first().textContent().then((t) => t.trim(), () => null);
      checks.cards = {};
      for (const [id, key] of [["count-passed", "passed"], ["count-failed", "failed"],
        ["count-ignored", "ignored"], ["count-filtered-out", "filtered_out"],
        ["count-unfinished", "unfinished"], ["count-unreadable", "unreadable"]]) {
        const shown = await card(id);
        checks.cards[key] = shown;
        const want = String(results.totals[key] ?? 0);
        if (shown !== want) problems.push(`count card ${key}: ${shown}, results.json ${want}`);
      }
      const status = await card("run-status");
      if (results.totals.status && status !== results.totals.status) {
        problems.push(`run status card: ${status}, results.json ${results.totals.status}`);
      }
    }

    if (summaryShot) await page.locator("#summary").screenshot({ path: summaryShot });
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
