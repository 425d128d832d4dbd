// voicenode /analytics: charts of GET /v1/analytics/summary (group_by=day) for the key's
// tenant. No build step, no dependencies: the charts are SVG drawn here.
// The key is typed in, or read once from the fragment (#key=...&from=YYYY-MM-DD&to=...) and
// then removed from the address bar; it is sent only as the bearer of the summary request.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $("query"), key: $("key"), tenant: $("tenant"), from: $("from"), to: $("to"),
    message: $("message"), totals: $("totals"),
    calls: $("calls-chart"), outcomes: $("outcomes-chart"), latency: $("latency-chart"),
  };
  const SVG = "http://www.w3.org/2000/svg";
  const DAY_MS = 86400000;
  const W = 760, H = 220, PAD = { left: 48, right: 12, top: 12, bottom: 28 };

  function isoDay(date) { return date.toISOString().slice(0, 10); }

  function prefill() {
    const today = new Date();
    ui.to.value = isoDay(today);
    ui.from.value = isoDay(new Date(today.getTime() - 29 * DAY_MS));
    readPageParams(ui, ["key", "tenant", "from", "to"]);
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text != null) node.textContent = text;
    return node;
  }

  function frame(svg, maxY, unit) {
    svg.replaceChildren();
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const y0 = H - PAD.bottom;
    svg.append(el("line", { class: "axis", x1: PAD.left, y1: y0, x2: W - PAD.right, y2: y0 }));
    svg.append(el("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: y0 }));
    svg.append(el("text", { x: 4, y: PAD.top + 10 }, `${fmt(maxY)}${unit}`));
    svg.append(el("text", { x: 4, y: y0 }, `0${unit}`));
    return (value) => y0 - (maxY > 0 ? (value / maxY) * (y0 - PAD.top) : 0);
  }

  function fmt(n) { return Math.round(n).toLocaleString("en"); }

  function days() {
    const out = [];
    const end = new Date(ui.to.value + "T00:00:00Z").getTime();
    for (let t = new Date(ui.from.value + "T00:00:00Z").getTime(); t <= end; t += DAY_MS) {
      out.push(isoDay(new Date(t)));
    }
    return out;
  }

  function drawCalls(byDay, dayList) {
    const max = Math.max(1, ...dayList.map((d) => (byDay[d] ? byDay[d].calls : 0)));
    const y = frame(ui.calls, max, "");
    const step = (W - PAD.left - PAD.right) / dayList.length;
    dayList.forEach((day, i) => {
      const calls = byDay[day] ? byDay[day].calls : 0;
      const x = PAD.left + i * step;
      const bar = el("rect", {
        class: "bar", x: x + step * 0.15, y: y(calls), width: step * 0.7,
        height: H - PAD.bottom - y(calls), "data-day": day, "data-calls": calls,
      });
      bar.append(el("title", {}, `${day}: ${calls} calls`));
      ui.calls.append(bar);
      if (dayList.length <= 14 || i % Math.ceil(dayList.length / 10) === 0) {
        ui.calls.append(el("text", { x: x + 2, y: H - 10 }, day.slice(5)));
      }
    });
  }

  function drawOutcomes(groups) {
    const mix = {};
    for (const g of groups) {
      for (const [name, n] of Object.entries(g.outcomes)) mix[name] = (mix[name] || 0) + n;
    }
    const names = Object.keys(mix).sort((a, b) => mix[b] - mix[a] || a.localeCompare(b));
    const svg = ui.outcomes;
    svg.replaceChildren();
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const max = Math.max(1, ...names.map((n) => mix[n]));
    const rowH = Math.min(28, (H - PAD.top - 4) / Math.max(1, names.length));
    const left = 130, width = W - left - 60;
    names.forEach((name, i) => {
      const y = PAD.top + i * rowH;
      svg.append(el("text", { x: 4, y: y + rowH * 0.65 }, name));
      const w = (mix[name] / max) * width;
      svg.append(el("rect", {
        class: "outcome", x: left, y: y + rowH * 0.15, width: w, height: rowH * 0.7,
        "data-outcome": name, "data-calls": mix[name],
      }));
      svg.append(el("text", { x: left + w + 6, y: y + rowH * 0.65 }, String(mix[name])));
    });
    if (!names.length) svg.append(el("text", { x: PAD.left, y: H / 2 }, "no calls"));
  }

  function drawLatency(byDay, dayList) {
    const values = [];
    for (const d of dayList) {
      const g = byDay[d];
      if (g && g.voice_to_voice_ms_p95 != null) values.push(g.voice_to_voice_ms_p95);
      if (g && g.voice_to_voice_ms_p50 != null) values.push(g.voice_to_voice_ms_p50);
    }
    const y = frame(ui.latency, Math.max(1, ...values), " ms");
    const step = (W - PAD.left - PAD.right) / dayList.length;
    for (const q of ["p50", "p95"]) {
      const field = `voice_to_voice_ms_${q}`;
      const points = [];
      dayList.forEach((day, i) => {
        const g = byDay[day];
        if (!g || g[field] == null) return;
        const x = PAD.left + (i + 0.5) * step;
        points.push(`${x},${y(g[field])}`);
        const dot = el("circle", {
          class: q, cx: x, cy: y(g[field]), r: 3, "data-day": day, "data-ms": g[field],
        });
        dot.append(el("title", {}, `${day} ${q}: ${fmt(g[field])} ms`));
        ui.latency.append(dot);
      });
      ui.latency.append(el("polyline", { class: q, points: points.join(" ") }));
    }
  }

  async function load() {
    ui.message.textContent = "";
    document.body.dataset.state = "loading";
    const lo = ui.from.value + "T00:00:00";
    const hi = isoDay(new Date(new Date(ui.to.value + "T00:00:00Z").getTime() + DAY_MS));
    const params = new URLSearchParams({ from: lo, to: hi + "T00:00:00", group_by: "day" });
    if (ui.tenant.value.trim()) params.set("tenant", ui.tenant.value.trim());
    const resp = await fetch("/v1/analytics/summary?" + params, {
      headers: { Authorization: "Bearer " + ui.key.value.trim(), Accept: "application/json" },
    });
    if (!resp.ok) {
      let detail = resp.statusText;
      try { detail = (await resp.json()).detail || detail; } catch (_) { /* not JSON */ }
      ui.message.textContent = `${resp.status}: ${detail}`;
      document.body.dataset.state = "error";
      return;
    }
    const summary = await resp.json();
    const byDay = Object.fromEntries(summary.groups.map((g) => [g.key, g]));
    const dayList = days();
    const total = summary.groups.reduce((n, g) => n + g.calls, 0);
    ui.totals.textContent =
      `${total} calls of tenant ${summary.tenant_id} (from ${summary.source})`;
    ui.totals.dataset.calls = String(total);
    ui.totals.dataset.tenant = summary.tenant_id;
    drawCalls(byDay, dayList);
    drawOutcomes(summary.groups);
    drawLatency(byDay, dayList);
    document.body.dataset.state = "loaded";
  }

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    load().catch((err) => {
      ui.message.textContent = String(err);
      document.body.dataset.state = "error";
    });
  });
  prefill();
  if (ui.key.value) ui.form.requestSubmit();
})();
