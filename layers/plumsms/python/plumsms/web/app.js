// plumsms message log: a page without a build step.
//
// Every piece of data reaches the page through textContent or an attribute set with
// setAttribute, never as markup to parse: message bodies are written by strangers.
// The API is called with relative URLs next to this page (".../ui" -> ".../messages"),
// with the bearer token kept in sessionStorage (the local stack's API_TOKEN, or the
// session token of `smsctl ui`, whose proxy signs the calls with SigV4 on AWS).
"use strict";

(() => {
  const TOKEN_KEY = "plumsms.token";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const CHART_DAYS = 14;
  // Why an inbound message got no automatic answer (Message.unanswered; docs/security.md).
  const UNANSWERED = {
    opt_out_review: "Mentions an opt-out word: a person should read it",
    sender_cannot_receive: "Sender is a short code or name: it cannot receive a reply",
    card_number: "The answer held a card number: not sent",
    own_number: "Sent from one of this account's own numbers",
    country_not_allowed: "Sender's country is not in the reply allow-list",
    opted_out: "Recipient opted out",
    repeated_body: "Same text repeated within minutes",
    reply_cap: "Hourly auto-reply limit for this sender reached",
    forward_cap: "Hourly group-forward limit for a member reached",
  };
  const STATUS_COLORS = {
    scheduled: "#8e7cc3", sending: "#6fa8dc", queued: "#9fc5e8", sent: "#3d85c6",
    delivered: "#38a169", undelivered: "#dd8452", failed: "#c53030", received: "#2c7a7b",
    cancelled: "#a0aec0", suppressed: "#718096",
  };
  const FALLBACK_COLORS = ["#d69e2e", "#b83280", "#4a5568", "#319795"];

  const apiBase = new URL(window.location.pathname.replace(/ui\/?$/, ""), window.location.origin);
  const $ = (selector) => document.querySelector(selector);

  const state = {
    filters: {},
    filterKey: null,
    cursors: [null],
    page: 0,
    nextCursor: null,
    scheduledCursor: null,
    optOutsCursor: null,
    logHash: "#/",
    chart: null,
  };
  const BODY_PREVIEW = 60;
  const SCHEDULED_PAGE = 100;

  // -- DOM helpers ----------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = String(value);
      else node.setAttribute(name, String(value));
    }
    for (const child of children) node.append(child);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function formatTime(iso) {
    if (!iso) return "";
    const when = new Date(iso);
    // With the zone's name: a time without one is read in whoever's zone reads it.
    return Number.isNaN(when.getTime()) ? iso : when.toLocaleString(undefined, { timeZoneName: "short" });
  }

  function preview(body) {
    const text = body || "";
    return text.length > BODY_PREVIEW ? `${text.slice(0, BODY_PREVIEW)}…` : text;
  }

  // One line of free text, cut to the column's width; the whole text in its title.
  function clipCell(text, full) {
    return el("td", {}, el("div", { class: "clip", title: full, text }));
  }

  // The series rule of a send in a few words (Message.schedule; docs/log.md).
  function repeats(schedule) {
    const rule = (schedule && schedule.recurrence) || null;
    if (!rule) return "";
    const units = { daily: "day", weekly: "week", monthly: "month" };
    let what = rule.cron ? `cron ${rule.cron}`
      : (rule.interval || 1) === 1 ? rule.frequency : `every ${rule.interval} ${units[rule.frequency]}s`;
    if (!rule.cron && rule.by_weekday) what += ` on ${rule.by_weekday.join(",")}`;
    if (rule.time_zone) what += ` in ${rule.time_zone}`;
    if (rule.count) what += `, ${rule.count} times`;
    else if (rule.until) what += `, until ${rule.until}`;
    return what;
  }

  function quietHours(schedule) {
    const quiet = schedule && schedule.quiet_hours;
    if (!quiet) return "";
    return `${quiet.start}-${quiet.end}${quiet.time_zone ? ` ${quiet.time_zone}` : ""}`;
  }

  function timeCell(iso) {
    return el("td", { title: iso || "" }, el("time", { datetime: iso || "", text: formatTime(iso) }));
  }

  function statusBadge(status) {
    const badge = el("span", { class: "badge", text: status });
    badge.style.setProperty("--badge", STATUS_COLORS[status] || "#4a5568");
    return badge;
  }

  function notice(message) {
    const box = $("#notice");
    box.textContent = message || "";
    box.hidden = !message;
    if (message) done("");
  }

  // What an action did (a cancel): shown until the next navigation.
  function done(message) {
    const box = $("#done");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // -- API --------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function token() {
    return window.sessionStorage.getItem(TOKEN_KEY);
  }

  function apiUrl(path, params) {
    const url = new URL(path, apiBase);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
    }
    return url;
  }

  async function call(method, path, params) {
    const headers = { Accept: "application/json" };
    const current = token();
    if (current) headers.Authorization = `Bearer ${current}`;
    let response;
    try {
      response = await fetch(apiUrl(path, params), { method, headers, credentials: "omit" });
    } catch (error) {
      throw new ApiError(0, "The API cannot be reached.");
    }
    if (response.status === 401 || response.status === 403) {
      showLogin(current ? "The API refused this token." : "");
      throw new ApiError(response.status, "Sign in to see the log.");
    }
    if (!response.ok) {
      let message = `The API answered ${response.status}.`;
      try {
        const body = await response.json();
        if (body && body.message) message = body.message;
      } catch (ignored) { /* not JSON */ }
      throw new ApiError(response.status, message);
    }
    return response;
  }

  async function getJson(path, params) {
    return (await call("GET", path, params)).json();
  }

  // -- sign in ----------------------------------------------------------------------------

  function showLogin(message) {
    $("#login").hidden = false;
    $("#app").hidden = true;
    $("#sign-out").hidden = true;
    notice(message);
    $("#token").focus();
  }

  function signedIn() {
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#sign-out").hidden = !token();
  }

  async function takeTokenFromFragment() {
    // The signing proxy of `smsctl ui` opens ".../ui#token=<its session token>"; the
    // fragment never reaches a server.
    const match = window.location.hash.match(/^#token=([^&]+)$/);
    if (match) {
      window.sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      window.history.replaceState(null, "", window.location.pathname + "#/");
      return;
    }
    // Against the local stack it opens ".../ui#code=<one-time code>", traded here for a
    // session token: the API token itself is never in a URL.
    const code = window.location.hash.match(/^#code=([^&]+)$/);
    if (!code) return;
    window.history.replaceState(null, "", window.location.pathname + "#/");
    try {
      const response = await fetch(new URL("local/ui-session", apiBase), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ code: decodeURIComponent(code[1]) }),
        credentials: "omit",
      });
      if (response.ok) window.sessionStorage.setItem(TOKEN_KEY, (await response.json()).token);
    } catch (ignored) { /* the sign-in form stays */ }
  }

  // -- the log ----------------------------------------------------------------------------

  function toIso(localValue) {
    if (!localValue) return "";
    const when = new Date(localValue);
    return Number.isNaN(when.getTime()) ? "" : when.toISOString();
  }

  function toLocalInput(iso) {
    if (!iso) return "";
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "";
    const local = new Date(when.getTime() - when.getTimezoneOffset() * 60000);
    return local.toISOString().slice(0, 16);
  }

  function filtersFromHash() {
    const query = window.location.hash.split("?")[1] || "";
    const params = new URLSearchParams(query);
    const filters = {};
    for (const name of ["number", "type", "status", "start", "end", "order", "limit"]) {
      if (params.get(name)) filters[name] = params.get(name);
    }
    return filters;
  }

  function fillFilterForm(filters) {
    const form = $("#filters");
    for (const name of ["number", "type", "status", "order", "limit"]) {
      form.elements[name].value = filters[name] || (name === "order" ? "desc" : name === "limit" ? "50" : "");
    }
    form.elements.start.value = toLocalInput(filters.start);
    form.elements.end.value = toLocalInput(filters.end);
  }

  function filtersFromForm() {
    const form = $("#filters");
    const filters = {};
    for (const name of ["number", "type", "status", "order", "limit"]) {
      const value = form.elements[name].value.trim();
      if (value) filters[name] = value;
    }
    if (filters.order === "desc") delete filters.order;
    if (filters.limit === "50") delete filters.limit;
    const start = toIso(form.elements.start.value);
    const end = toIso(form.elements.end.value);
    if (start) filters.start = start;
    if (end) filters.end = end;
    return filters;
  }

  function messageRow(message) {
    return el(
      "tr",
      { "data-id": message.id },
      el("td", { text: message.to }),
      el("td", { text: message.from }),
      timeCell(message.created_at),
      el("td", {}, statusBadge(message.status)),
      el("td", { text: message.type }),
      clipCell(preview(message.body), message.body),
      el("td", { class: "number", text: message.segments }),
      clipCell(message.error || "", message.error || ""),
      el("td", {}, el("a", { href: `#/messages/${encodeURIComponent(message.id)}`, text: "View" })),
    );
  }

  // The log's address: its filters, and past page 1 the page number and its cursor, so
  // reload, back and forward return to the same page.
  function logHash(filters, page, cursor) {
    const params = new URLSearchParams(filters);
    if (page > 0 && cursor) {
      params.set("page", String(page + 1));
      params.set("cursor", cursor);
    }
    const query = params.toString();
    return query ? `#/?${query}` : "#/";
  }

  async function loadLogPage() {
    const body = $("#log-table tbody");
    const cursor = state.cursors[state.page];
    const data = await getJson("messages", { ...state.filters, cursor });
    clear(body);
    if (!data.items.length) {
      body.append(el("tr", {}, el("td", { colspan: 9, class: "empty", text: "No messages match." })));
    }
    for (const message of data.items) body.append(messageRow(message));
    state.nextCursor = data.next_cursor;
    $("#prev-page").disabled = state.page === 0;
    $("#next-page").disabled = !data.next_cursor;
    $("#page-label").textContent = `Page ${state.page + 1}`;
  }

  async function showLog() {
    state.logHash = window.location.hash || "#/";
    state.filters = filtersFromHash();
    const key = JSON.stringify(state.filters);
    if (key !== state.filterKey) {
      state.filterKey = key;
      state.cursors = [null];
    }
    const params = new URLSearchParams(window.location.hash.split("?")[1] || "");
    const page = Math.max(0, (parseInt(params.get("page"), 10) || 1) - 1);
    const cursor = params.get("cursor");
    state.page = page > 0 && cursor ? page : 0;
    if (state.page > 0) state.cursors[state.page] = cursor;
    fillFilterForm(state.filters);
    await Promise.all([loadLogPage(), state.page > 0 && state.chart ? drawChart(state.chart) : loadChart()]);
  }

  // -- the chart --------------------------------------------------------------------------

  function colorOf(status, index) {
    return STATUS_COLORS[status] || FALLBACK_COLORS[index % FALLBACK_COLORS.length];
  }

  async function loadChart() {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    let data;
    try {
      data = await getJson("messages/stats", { days: CHART_DAYS, tz: zone });
    } catch (error) {
      if (error.status === 400) data = await getJson("messages/stats", { days: CHART_DAYS });
      else throw error;
    }
    state.chart = data;
    drawChart(data);
  }

  function drawChart(data) {
    const box = $("#chart");
    const legend = $("#chart-legend");
    clear(box);
    clear(legend);
    // Drawn at the width it is shown at, so its labels keep their size on a phone.
    const width = Math.max(280, Math.round(box.clientWidth || 1000));
    const height = width < 600 ? 180 : 220;
    const pad = { left: 32, right: 8, top: 12, bottom: 28 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const max = Math.max(1, ...data.days.map((d) => d.total));
    const slot = plotW / data.days.length;
    const barW = Math.max(4, slot * 0.7);
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart-svg",
      "aria-label": `Messages per day by status, last ${data.days.length} days`,
    });
    chart.append(svg("line", { x1: pad.left, y1: pad.top + plotH, x2: width - pad.right, y2: pad.top + plotH, class: "axis" }));
    chart.append(svg("text", { x: pad.left - 6, y: pad.top + 8, "text-anchor": "end", class: "tick", text: String(max) }));
    chart.append(svg("text", { x: pad.left - 6, y: pad.top + plotH, "text-anchor": "end", class: "tick", text: "0" }));
    data.days.forEach((day, index) => {
      const x = pad.left + index * slot + (slot - barW) / 2;
      let y = pad.top + plotH;
      data.statuses.forEach((status, statusIndex) => {
        const count = day.counts[status] || 0;
        if (!count) return;
        const h = (count / max) * plotH;
        y -= h;
        chart.append(svg("rect", {
          x: x.toFixed(1), y: y.toFixed(1), width: barW.toFixed(1), height: Math.max(h, 1).toFixed(1),
          fill: colorOf(status, statusIndex), "data-status": status, "data-date": day.date,
        }, svg("title", { text: `${day.date}: ${count} ${status}` })));
      });
      // One date label per 44 px at most: "12-04" needs about 30.
      if (index % Math.max(1, Math.ceil(44 / slot)) === 0) {
        chart.append(svg("text", {
          x: (x + barW / 2).toFixed(1), y: height - 8, "text-anchor": "middle", class: "tick",
          text: day.date.slice(5),
        }));
      }
    });
    box.append(chart);
    data.statuses.forEach((status, index) => {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = colorOf(status, index);
      const total = data.days.reduce((sum, day) => sum + (day.counts[status] || 0), 0);
      legend.append(el("li", {}, swatch, `${status} (${total})`));
    });
    const note = data.complete
      ? `last ${data.days.length} days, ${data.zone}`
      : `busy window: counted messages since ${formatTime(data.counted_since)} only`;
    $("#chart-note").textContent = note;
  }

  // -- export -----------------------------------------------------------------------------

  async function exportMessages(format) {
    const status = $("#export-status");
    const chunks = [];
    let rows = 0;
    let cursor = null;
    const buttons = document.querySelectorAll("[data-export]");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      do {
        const response = await call("GET", "messages/export", { ...state.filters, format, cursor });
        chunks.push(await response.text());
        rows += Number(response.headers.get("X-Export-Rows") || 0);
        cursor = response.headers.get("X-Next-Cursor");
        status.textContent = `Exported ${rows} messages${cursor ? "…" : "."}`;
      } while (cursor);
      const type = format === "csv" ? "text/csv" : "application/x-ndjson";
      const link = el("a", {
        href: URL.createObjectURL(new Blob(chunks, { type })),
        download: `messages-${new Date().toISOString().replace(/[:.]/g, "-")}.${format}`,
      });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (error) {
      status.textContent = `Export stopped: ${error.message}`;
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // -- one message ------------------------------------------------------------------------

  function field(list, label, value, render) {
    list.append(el("dt", { text: label }));
    const dd = el("dd");
    if (value === null || value === undefined || value === "") dd.append(el("span", { class: "muted", text: "—" }));
    else if (render) dd.append(render(value));
    else dd.textContent = String(value);
    list.append(dd);
  }

  function clearDetail(id) {
    // Nothing of the previous message may stay on screen (least of all its Cancel).
    $("#detail-id").textContent = id;
    clear($("#detail-fields"));
    $("#detail-body").textContent = "";
    clear($("#detail-history"));
    const cancel = $("#detail-cancel");
    cancel.hidden = true;
    cancel.onclick = null;
  }

  async function showDetail(id) {
    $("#back-link").setAttribute("href", state.logHash);
    clearDetail(id);
    let message;
    try {
      message = await getJson(`messages/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status === 404) throw new ApiError(404, `No message has the id ${id}.`);
      throw error;
    }
    $("#detail-id").textContent = message.id;
    const list = $("#detail-fields");
    field(list, "Status", message.status, statusBadge);
    field(list, "Type", message.type);
    field(list, "From", message.from);
    field(list, "To", message.to);
    field(list, "Created", message.created_at, (v) => el("time", { datetime: v, title: v, text: formatTime(v) }));
    field(list, "Updated", message.updated_at, (v) => el("time", { datetime: v, title: v, text: formatTime(v) }));
    field(list, "Send at", message.send_at, (v) => el("time", { datetime: v, title: v, text: formatTime(v) }));
    field(list, "Plum sms_message_id", message.sms_message_id, (v) => el("code", { text: v }));
    field(list, "Result URL", message.result_url, (v) => el("code", { class: "wrap", text: v }));
    field(list, "Segments", `${message.segments} (${message.encoding})`);
    field(list, "Error", message.error);
    field(list, "Not answered", message.unanswered, (v) => el("span", { title: v, text: UNANSWERED[v] || v }));
    if (message.schedule) {
      const schedule = message.schedule;
      if (schedule.recurrence) field(list, "Repeats", `${repeats(schedule)} (this is #${schedule.occurrence || 1})`);
      field(list, "Series", schedule.series_id, (v) => el("code", { text: v }));
      if (schedule.quiet_hours) field(list, "Quiet hours", quietHours(schedule));
    }
    $("#detail-body").textContent = message.body;
    const timeline = $("#detail-history");
    clear(timeline);
    if (!message.history.length) timeline.append(el("li", { class: "muted", text: "No status changes recorded." }));
    for (const entry of message.history) {
      timeline.append(el(
        "li", {},
        statusBadge(entry.status), " ",
        el("time", { datetime: entry.at, title: entry.at, text: formatTime(entry.at) }),
        el("span", { class: "muted", text: ` from ${entry.source}` }),
      ));
    }
    const cancel = $("#detail-cancel");
    cancel.hidden = message.status !== "scheduled";
    cancel.onclick = () => cancelSend(message.id, () => showDetail(message.id));
  }

  async function cancelSend(id, then) {
    if (!window.confirm("Cancel this scheduled message? It will not be sent.")) return;
    try {
      await call("DELETE", `messages/${encodeURIComponent(id)}`);
      notice("");
      await then();
      done(`Cancelled: message ${id} will not be sent.`);
    } catch (error) {
      notice(`Could not cancel: ${error.message}`);
    }
  }

  // -- scheduled and opt-outs -------------------------------------------------------------

  async function loadScheduled(append) {
    const body = $("#scheduled-table tbody");
    // Listed by the API in send order (the Due index), so "More" continues the order.
    const data = await getJson("messages", {
      status: "scheduled", sort: "send_at", order: "asc", limit: SCHEDULED_PAGE,
      cursor: append ? state.scheduledCursor : null,
    });
    if (!append) clear(body);
    body.querySelectorAll("td.empty").forEach((cell) => cell.parentNode.remove());
    for (const message of data.items) {
      body.append(el(
        "tr", { "data-id": message.id },
        timeCell(message.send_at),
        el("td", { text: message.to }),
        el("td", { text: message.from }),
        clipCell(preview(message.body), message.body),
        el("td", { class: "text", text: repeats(message.schedule) }),
        el("td", { class: "text", text: quietHours(message.schedule) }),
        el("td", {}, el("a", { href: `#/messages/${encodeURIComponent(message.id)}`, text: "View" })),
        el("td", {}, el("button", {
          type: "button", class: "danger small", text: "Cancel",
          onclick: () => cancelSend(message.id, () => loadScheduled(false)),
        })),
      ));
    }
    if (!body.children.length) {
      body.append(el("tr", {}, el("td", { colspan: 8, class: "empty", text: "Nothing is scheduled." })));
    }
    state.scheduledCursor = data.next_cursor;
    $("#scheduled-more").hidden = !data.next_cursor;
  }

  async function loadOptOuts(append) {
    const body = $("#opt-outs-table tbody");
    const data = await getJson("opt-outs", { cursor: append ? state.optOutsCursor : null });
    if (!append) clear(body);
    for (const optOut of data.items) {
      body.append(el(
        "tr", {},
        el("td", { text: optOut.number }),
        el("td", { text: optOut.keyword }),
        timeCell(optOut.at),
        el("td", {}, el("a", { href: `#/messages/${encodeURIComponent(optOut.message_id)}`, text: "View" })),
      ));
    }
    if (!body.children.length) {
      body.append(el("tr", {}, el("td", { colspan: 4, class: "empty", text: "No number has opted out." })));
    }
    state.optOutsCursor = data.next_cursor;
    $("#opt-outs-more").hidden = !data.next_cursor;
  }

  // -- routing ----------------------------------------------------------------------------

  function showView(name) {
    for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
    for (const link of document.querySelectorAll("nav a[data-view]")) {
      link.classList.toggle("active", link.dataset.view === name || (name === "detail" && link.dataset.view === "log"));
    }
  }

  async function route() {
    if (!token()) {
      showLogin("");
      return;
    }
    const hash = window.location.hash || "#/";
    const path = hash.slice(1).split("?")[0];
    // Nothing said about the previous view stays on the next one.
    notice("");
    done("");
    $("#export-status").textContent = "";
    // Shown before the view loads, so the chart is drawn at the width it will have.
    signedIn();
    try {
      const detail = path.match(/^\/messages\/([^/]+)$/);
      if (detail) {
        showView("detail");
        await showDetail(decodeURIComponent(detail[1]));
      } else if (path === "/scheduled") {
        showView("scheduled");
        await loadScheduled(false);
      } else if (path === "/opt-outs") {
        showView("opt-outs");
        await loadOptOuts(false);
      } else {
        showView("log");
        await showLog();
      }
      document.body.dataset.ready = "true";
    } catch (error) {
      if (error.status !== 401 && error.status !== 403) notice(error.message);
    }
  }

  function listPanels() {
    for (const view of document.querySelectorAll("[data-list]")) {
      const panel = $("#list-panel").content.cloneNode(true);
      const name = view.dataset.list;
      panel.querySelector("h2").textContent = view.dataset.title;
      const note = panel.querySelector(".panel-head .muted");
      if (view.dataset.note) note.textContent = view.dataset.note;
      else note.remove();
      panel.querySelector("table").id = `${name}-table`;
      panel.querySelector(".pager button").id = `${name}-more`;
      const head = panel.querySelector("thead tr");
      for (const title of view.dataset.columns.split("|")) head.append(el("th", { text: title }));
      view.append(panel);
    }
  }

  function bind() {
    listPanels();
    $("#login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      window.sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
      $("#token").value = "";
      route();
    });
    $("#sign-out").addEventListener("click", () => {
      window.sessionStorage.removeItem(TOKEN_KEY);
      showLogin("Signed out.");
    });
    $("#filters").addEventListener("submit", (event) => {
      event.preventDefault();
      const query = new URLSearchParams(filtersFromForm()).toString();
      const target = query ? `#/?${query}` : "#/";
      if (window.location.hash === target) route();
      else window.location.hash = target;
    });
    $("#filters").addEventListener("reset", () => {
      setTimeout(() => { window.location.hash = "#/"; }, 0);
    });
    $("#next-page").addEventListener("click", () => {
      if (!state.nextCursor) return;
      state.cursors[state.page + 1] = state.nextCursor;
      window.location.hash = logHash(state.filters, state.page + 1, state.nextCursor);
    });
    $("#prev-page").addEventListener("click", () => {
      if (state.page === 0) return;
      const cursor = state.cursors[state.page - 1];
      // A page opened from its address knows its own cursor only: back to page 1 then.
      window.location.hash = cursor ? logHash(state.filters, state.page - 1, cursor) : logHash(state.filters, 0, null);
    });
    for (const button of document.querySelectorAll("[data-export]")) {
      button.addEventListener("click", () => exportMessages(button.dataset.export));
    }
    $("#scheduled-more").addEventListener("click", () => loadScheduled(true).catch((e) => notice(e.message)));
    $("#opt-outs-more").addEventListener("click", () => loadOptOuts(true).catch((e) => notice(e.message)));
    // A "#token=" or "#code=" link pasted into a tab already open signs in too.
    window.addEventListener("hashchange", () => takeTokenFromFragment().finally(route));
    let resized = null;
    window.addEventListener("resize", () => {
      clearTimeout(resized);
      resized = setTimeout(() => { if (state.chart && !$("#view-log").hidden) drawChart(state.chart); }, 150);
    });
  }

  bind();
  takeTokenFromFragment().finally(route);
})();
