/* Podium's dashboard: the workflow list and a workflow's page, read from the HTTP API.

   Two views behind the URL's hash: `#/?name=&state=&mode=&offset=` (the list) and
   `#/workflows/<id>` (one workflow: its DAG drawn by Cytoscape.js with the dagre
   layout, its attempts on a vis-timeline, its attempts' input, output and error in
   a table). Changes arrive as server-sent events from `api/events`; each one makes
   the view read the API again. While a view shows a running workflow it also reads
   it every POLL_MS, so it stays live when the stream is down. Everything a person
   reads is page text: ids, task ids, states (the canvas only draws them again).
   No data is ever put into the page as HTML. */
"use strict";

(() => {
  const WORKFLOW_STATES = [
    "Running", "Succeeded", "Failed", "Compensating", "Compensated", "Cancelled", "TimedOut",
  ];
  const TASK_STATES = ["Pending", "Running", "Retrying", "Succeeded", "Failed", "Skipped"];
  const TERMINAL = new Set(["Succeeded", "Failed", "Compensated", "Cancelled", "TimedOut"]);
  const PAGE = 50;
  const POLL_MS = 1000;
  const REFRESH_DEBOUNCE_MS = 100;
  const NODE_FONT = 12;

  const $ = (selector) => document.querySelector(selector);

  /** An element with attributes and children (strings become text nodes, never HTML). */
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function stateColour(state) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(`--state-${state}`);
    return value.trim() || "#98a2b3";
  }

  // -- times ------------------------------------------------------------------------

  /** Milliseconds since the epoch from epoch seconds or an ISO 8601 string; null if none. */
  function toMs(value) {
    if (value === null || value === undefined || value === "") return null;
    if (typeof value === "number") return value * 1000;
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? null : ms;
  }

  function pad(n, width = 2) {
    return String(n).padStart(width, "0");
  }

  function clock(ms) {
    if (ms === null) return "";
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function dateTime(ms) {
    if (ms === null) return "";
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(ms)}`;
  }

  function span(ms) {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
    const s = Math.round(ms / 1000);
    if (s < 3600) return `${Math.floor(s / 60)} m ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
  }

  // -- the API ----------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    const token = sessionStorage.getItem("podium.token");
    if (token && options.method && options.method !== "GET") headers.Authorization = `Bearer ${token}`;
    const response = await fetch(`api/${path}`, { ...options, headers });
    if (!response.ok) {
      let reason = response.statusText;
      try {
        const body = await response.json();
        reason = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
      } catch (_) { /* not JSON: the status text */ }
      throw new ApiError(response.status, reason);
    }
    return response.status === 204 ? null : response.json();
  }

  function problem(message) {
    const el = $("#problem");
    el.hidden = !message;
    el.textContent = message || "";
  }

  // -- what the API says, in one shape ---------------------------------------------

  function attemptOf(raw) {
    const scheduled = toMs(raw.scheduled_at);
    const started = toMs(raw.started_at ?? raw.start);
    const ended = toMs(raw.ended_at ?? raw.end);
    const begins = [scheduled, started].filter((t) => t !== null);
    return {
      task: raw.task_id,
      type: raw.task_type ?? raw.type ?? null,
      attempt: raw.attempt ?? 0,
      compensation: Boolean(raw.compensation),
      state: raw.state,
      input: raw.input,
      output: raw.output,
      error: raw.error,
      reason: raw.reason ?? null,
      scheduled,
      started,
      begin: begins.length ? Math.min(...begins) : null,
      ended,
      durationMs: raw.duration_s != null ? raw.duration_s * 1000
        : raw.duration != null ? raw.duration * 1000
        : started !== null && ended !== null ? ended - started : null,
    };
  }

  function tasksOf(raw) {
    // an ended workflow's tasks are what its end event said; a running one's, the API's view
    const tasks = raw.result?.tasks ?? raw.tasks ?? {};
    if (Array.isArray(tasks)) {
      return Object.fromEntries(tasks.map((t) => [t.task_id ?? t.id, t]));
    }
    return tasks;
  }

  function workflowOf(raw) {
    const attempts = (raw.attempts ?? []).map(attemptOf);
    attempts.sort((a, b) => (a.begin ?? Infinity) - (b.begin ?? Infinity)
      || Number(a.compensation) - Number(b.compensation) || a.attempt - b.attempt);
    const tasks = tasksOf(raw);
    let nodes = raw.dag?.nodes ?? [];
    if (!nodes.length) {  // no definition stored: the tasks that ran, unconnected
      const ids = [...new Set([...Object.keys(tasks), ...attempts.map((a) => a.task)])];
      nodes = ids.map((id) => ({ id, type: null, depends_on: [] }));
    }
    return {
      id: raw.workflow_id ?? raw.id,
      name: raw.workflow ?? raw.name,
      version: raw.version,
      mode: raw.mode,
      // the store hears of a saga's start only from its compensations' attempts
      state: raw.state === "Running" && attempts.some((a) => a.compensation) ? "Compensating" : raw.state,
      started: toMs(raw.started_at),
      ended: toMs(raw.ended_at),
      input: raw.input,
      output: raw.output ?? raw.result?.output ?? null,
      error: raw.error ?? raw.result?.error ?? null,
      tasks,
      nodes,
      attempts,
      transitions: raw.transitions ?? [],
    };
  }

  /** Each task's state, attempt count and compensation, for the DAG and the task table. */
  function taskStates(wf) {
    const out = {};
    for (const node of wf.nodes) {
      const known = wf.tasks[node.id] ?? {};
      out[node.id] = {
        id: node.id,
        type: node.type,
        when: node.when ?? null,
        undo: node.compensate ?? null,
        state: known.state ?? "Pending",
        attempts: known.attempts ?? 0,
        compensation: null,
      };
    }
    for (const a of wf.attempts) {
      const task = out[a.task] ?? (out[a.task] = {
        id: a.task, type: a.type, state: "Pending", attempts: 0, compensation: null,
      });
      if (a.compensation) {
        task.compensation = a.state;
      } else if (!wf.tasks[a.task] && a.attempt >= task.attempts) {
        task.state = a.state;
        task.attempts = a.attempt;
      }
      task.type = task.type ?? a.type;
    }
    return out;
  }

  function compensationLabel(state) {
    if (!state) return "";
    return state === "Succeeded" ? "undone" : state === "Running" ? "undoing" : `undo ${state.toLowerCase()}`;
  }

  // -- views ------------------------------------------------------------------------

  const view = {
    name: null,       // "list" or "workflow"
    workflowId: null,
    running: false,   // the view shows a workflow that has not ended
  };

  function route() {
    const hash = location.hash.replace(/^#/, "") || "/";
    const match = hash.match(/^\/workflows\/(.+)$/);
    if (match) {
      showWorkflow(decodeURIComponent(match[1]));
    } else {
      showList(new URLSearchParams(hash.split("?")[1] || ""));
    }
  }

  // the list -------------------------------------------------------------------------

  let listQuery = new URLSearchParams();

  function showList(query) {
    if (view.name !== "list") teardownWorkflow();
    view.name = "list";
    view.workflowId = null;
    listQuery = query;
    $("#workflow-view").hidden = true;
    $("#list-view").hidden = false;
    document.title = "Podium: workflows";
    const form = $("#filters");
    for (const field of ["name", "state", "mode"]) form.elements[field].value = query.get(field) ?? "";
    refresh();
  }

  function listHash(changes) {
    const query = new URLSearchParams(listQuery);
    for (const [key, value] of Object.entries(changes)) {
      if (value === "" || value === null || value === undefined) query.delete(key);
      else query.set(key, value);
    }
    if (!("offset" in changes)) query.delete("offset");
    const text = query.toString();
    return text ? `#/?${text}` : "#/";
  }

  async function loadList() {
    const offset = Number(listQuery.get("offset") || 0);
    const params = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    for (const field of ["name", "state", "mode"]) {
      if (listQuery.get(field)) params.set(field, listQuery.get(field));
    }
    const body = await api(`workflows?${params}`);
    if (view.name !== "list") return;
    const items = body.workflows ?? [];
    renderCounts(body.counts ?? {}, body.total ?? items.length);
    renderWorkflows(items);
    renderPager(offset, items.length, body.total ?? items.length);
    const names = $("#names");
    for (const item of items) {
      const name = item.workflow ?? item.name;
      if (name && ![...names.options].some((o) => o.value === name)) names.append(h("option", { value: name }));
    }
    view.running = items.some((item) => !TERMINAL.has(item.state));
  }

  function renderCounts(counts, total) {
    const selected = listQuery.get("state") || "";
    const chips = [
      h("a", { class: `count${selected ? "" : " selected"}`, href: listHash({ state: "" }), "data-state": "" },
        "All ", h("b", { text: Object.values(counts).reduce((a, b) => a + b, 0) || total })),
    ];
    const states = [...WORKFLOW_STATES, ...Object.keys(counts).filter((s) => !WORKFLOW_STATES.includes(s))];
    for (const state of states) {
      const n = counts[state] ?? 0;
      const chip = h("a", {
        class: `count${n ? "" : " zero"}${selected === state ? " selected" : ""}`,
        href: listHash({ state }),
        "data-state": state,
        style: `--dot: ${stateColour(state)}`,
      }, h("span", { class: "dot" }), `${state} `, h("b", { text: n }));
      chips.push(chip);
    }
    $("#counts").replaceChildren(...chips);
  }

  function renderWorkflows(items) {
    const rows = items.map((item) => {
      const id = item.workflow_id ?? item.id;
      const started = toMs(item.started_at);
      const ended = toMs(item.ended_at);
      const duration = item.duration_s != null ? item.duration_s * 1000
        : started !== null ? (ended ?? Date.now()) - started : null;
      return h("tr", { "data-workflow-id": id, "data-state": item.state },
        h("td", {}, h("a", { href: `#/workflows/${encodeURIComponent(id)}`, text: id })),
        h("td", {}, `${item.workflow ?? item.name ?? ""}`, item.version ? h("span", { class: "muted", text: ` v${item.version}` }) : null),
        h("td", {}, h("span", { class: `badge mode ${item.mode}`, text: item.mode })),
        h("td", {}, h("span", { class: `badge state state-${item.state}`, text: item.state })),
        h("td", { class: "num", text: dateTime(started) }),
        h("td", { class: "num", text: span(duration) }),
      );
    });
    $("#workflows tbody").replaceChildren(...rows);
    $("#no-workflows").hidden = rows.length > 0;
  }

  function renderPager(offset, shown, total) {
    $("#page-range").textContent = shown ? `${offset + 1}–${offset + shown} of ${total}` : "";
    const [newer, older] = $("#pager").querySelectorAll("button");
    newer.disabled = offset === 0;
    older.disabled = offset + shown >= total;
  }

  function setUpList() {
    const form = $("#filters");
    const states = form.elements.state;
    for (const state of WORKFLOW_STATES) states.append(h("option", { value: state, text: state }));
    const apply = () => {
      location.hash = listHash({
        name: form.elements.name.value.trim(),
        state: form.elements.state.value,
        mode: form.elements.mode.value,
      });
    };
    form.addEventListener("change", apply);
    form.addEventListener("submit", (event) => { event.preventDefault(); apply(); });
    form.addEventListener("reset", () => { setTimeout(() => { location.hash = "#/"; }); });
    $("#pager").addEventListener("click", (event) => {
      const step = Number(event.target.dataset?.step || 0);
      if (!step) return;
      const offset = Math.max(0, Number(listQuery.get("offset") || 0) + step * PAGE);
      location.hash = listHash({ offset: offset || "" });
    });
  }

  // one workflow --------------------------------------------------------------------

  let graph = null;      // the Cytoscape instance
  let graphNodes = "";   // the node ids it was laid out with
  let timeline = null;   // the vis-timeline instance
  let timelineItems = null;
  let timelineGroups = null;
  let userZoomed = false;
  let current = null;    // the workflow shown (normalised)

  function teardownWorkflow() {
    if (graph) graph.destroy();
    if (timeline) timeline.destroy();
    graph = timeline = timelineItems = timelineGroups = current = null;
    graphNodes = "";
    userZoomed = false;
  }

  function showWorkflow(id) {
    if (view.workflowId !== id) teardownWorkflow();
    view.name = "workflow";
    view.workflowId = id;
    $("#list-view").hidden = true;
    $("#workflow-view").hidden = false;
    $("#workflow-id").textContent = id;
    document.title = `Podium: ${id}`;
    refresh();
  }

  async function loadWorkflow() {
    const id = view.workflowId;
    let raw;
    try {
      raw = await api(`workflows/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status === 404) {
        view.running = true;  // not recorded yet (or never): keep looking
        throw new Error(`No workflow ${id} is recorded (yet).`);
      }
      throw error;
    }
    if (view.workflowId !== id) return;
    const wf = workflowOf(raw);
    current = wf;
    view.running = !TERMINAL.has(wf.state);
    renderHead(wf);
    const tasks = taskStates(wf);
    renderGraph(wf, tasks);
    renderTasks(tasks);
    renderTimeline(wf, tasks);
    renderAttempts(wf);
    renderWorkflowData(wf);
    renderTransitions(wf);
  }

  function renderHead(wf) {
    document.title = `Podium: ${wf.name ?? ""} ${wf.id}`;
    $("#workflow-id").textContent = wf.id;
    $("#workflow-name").textContent = `${wf.name ?? "?"}${wf.version ? ` v${wf.version}` : ""}`;
    const mode = $("#workflow-mode");
    mode.textContent = wf.mode ?? "";
    mode.className = `badge mode ${wf.mode ?? ""}`;
    const state = $("#workflow-state");
    state.textContent = wf.state;
    state.className = `badge state state-${wf.state}`;
    $("#cancel").hidden = TERMINAL.has(wf.state);
    const end = wf.ended ?? (TERMINAL.has(wf.state) ? null : Date.now());
    const times = [
      ["Started", dateTime(wf.started)],
      ["Ended", dateTime(wf.ended)],
      ["Duration", wf.started !== null && end !== null ? span(end - wf.started) : ""],
    ];
    $("#workflow-times").replaceChildren(
      ...times.filter(([, v]) => v).map(([k, v]) => h("div", {}, h("dt", { text: k }), h("dd", { text: v }))),
    );
  }

  // the DAG: Cytoscape.js, laid out by dagre, coloured by each task's state

  function nodeLabel(task) {
    const undo = compensationLabel(task.compensation);
    const tries = task.attempts > 1 ? ` ×${task.attempts}` : "";
    return `${task.id}\n${task.state}${tries}${undo ? `\n↺ ${undo}` : ""}`;
  }

  /** A node's data: its state, colour, label, and a size that fits the label. */
  function nodeData(task) {
    const label = nodeLabel(task);
    const lines = label.split("\n");
    return {
      state: task.state,
      colour: stateColour(task.state),
      label,
      compensation: task.compensation ?? "",
      w: Math.max(...lines.map((l) => l.length)) * NODE_FONT * 0.62 + 22,
      h: lines.length * NODE_FONT * 1.3 + 16,
    };
  }

  function renderGraph(wf, tasks) {
    const ids = wf.nodes.map((n) => n.id).join("\u0000");
    if (!graph || ids !== graphNodes) {
      if (graph) graph.destroy();
      graphNodes = ids;
      const known = new Set(wf.nodes.map((n) => n.id));
      const elements = [];
      for (const node of wf.nodes) elements.push({ data: { id: node.id, ...nodeData(tasks[node.id]) } });
      for (const node of wf.nodes) {
        for (const dep of node.depends_on ?? []) {
          if (known.has(dep)) elements.push({ data: { id: `${dep}->${node.id}`, source: dep, target: node.id } });
        }
      }
      graph = window.cytoscape({
        container: $("#dag"),
        elements,
        style: graphStyle(),
        layout: { name: "dagre", rankDir: "LR", nodeSep: 24, rankSep: 70, padding: 16 },
        autoungrabify: true,
        boxSelectionEnabled: false,
        minZoom: 0.3,
        maxZoom: 1.5,
      });
      graph.on("tap", "node", (event) => focusTask(event.target.id()));
      window.podiumDashboard.graph = graph;
    }
    graph.batch(() => {
      for (const task of Object.values(tasks)) {
        const node = graph.getElementById(task.id);
        if (!node.nonempty()) continue;
        node.data(nodeData(task));
      }
    });
    $("#dag").setAttribute("aria-label", `tasks: ${Object.values(tasks).map((t) => `${t.id} ${t.state}`).join(", ")}`);
  }

  function graphStyle() {
    return [
      {
        selector: "node",
        style: {
          shape: "round-rectangle",
          width: "data(w)",
          height: "data(h)",
          label: "data(label)",
          "text-wrap": "wrap",
          "text-valign": "center",
          "text-halign": "center",
          "font-family": "ui-monospace, Menlo, Consolas, DejaVu Sans Mono, monospace",
          "font-size": NODE_FONT,
          "line-height": 1.3,
          color: "#ffffff",
          "background-color": "data(colour)",
          "border-width": 1,
          "border-color": "rgba(0,0,0,0.2)",
        },
      },
      { selector: 'node[state = "Skipped"]', style: { color: "#374151", "border-style": "dashed" } },
      { selector: 'node[state = "Pending"]', style: { color: "#1f2937" } },
      {
        selector: 'node[compensation != ""]',
        style: { "border-width": 3, "border-style": "dashed", "border-color": stateColour("Compensated") },
      },
      {
        selector: "edge",
        style: {
          width: 1.5,
          "line-color": "#9ca3af",
          "target-arrow-color": "#9ca3af",
          "target-arrow-shape": "triangle",
          "curve-style": "bezier",
        },
      },
    ];
  }

  function focusTask(taskId) {
    for (const row of document.querySelectorAll("#attempts tbody tr, #tasks tbody tr")) {
      row.classList.toggle("highlight", row.dataset.task === taskId);
    }
    const first = document.querySelector(`#attempts tbody tr[data-task="${CSS.escape(taskId)}"]`);
    if (first) first.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function renderTasks(tasks) {
    const rows = Object.values(tasks).map((task) => h("tr", { "data-task": task.id, "data-state": task.state },
      h("td", {}, h("span", { class: "mono task-id", text: task.id }),
        task.type ? h("div", { class: "hint mono", text: task.type }) : null,
        task.when ? h("div", { class: "hint mono", text: `when ${task.when}` }) : null),
      h("td", {}, h("span", { class: `badge state state-${task.state}`, text: task.state })),
      h("td", { class: "num", text: task.attempts }),
      h("td", {}, task.compensation
        ? h("span", { class: "badge compensation", "data-compensation": task.compensation, text: `↺ ${compensationLabel(task.compensation)}` })
        : task.undo ? h("span", { class: "hint mono", text: task.undo }) : ""),
    ));
    $("#tasks tbody").replaceChildren(...rows);
  }

  // the timeline: vis-timeline, a row per task (and per compensated task)

  function renderTimeline(wf, tasks) {
    if (!timeline) {
      timelineItems = new window.vis.DataSet();
      timelineGroups = new window.vis.DataSet();
      timeline = new window.vis.Timeline($("#timeline"), timelineItems, timelineGroups, {
        stack: false,
        zoomMin: 10,
        margin: { item: { horizontal: 0, vertical: 6 } },
        orientation: { axis: "top" },
        groupOrder: "order",
        selectable: true,
        showCurrentTime: false,
        tooltip: { followMouse: true, overflowMethod: "cap" },
        format: { minorLabels: { millisecond: "ss.SSS", second: "HH:mm:ss" } },
      });
      timeline.on("rangechanged", (event) => { if (event.byUser) userZoomed = true; });
      timeline.on("select", ({ items }) => {
        const item = items.length ? timelineItems.get(items[0]) : null;
        if (item?.task) focusTask(item.task);
      });
      window.podiumDashboard.timeline = timeline;
    }
    const now = Date.now();
    const groups = [{ id: "workflow", content: "workflow", order: 0, className: "workflow" }];
    const order = Object.keys(tasks);
    order.forEach((id, i) => groups.push({ id: `t:${id}`, content: id, order: 1 + i }));
    const compensated = order.filter((id) => tasks[id].compensation);
    compensated.forEach((id, i) => groups.push({
      id: `c:${id}`, content: `↺ ${id}`, order: 1 + order.length + i, className: "compensation",
    }));
    const items = [];
    if (wf.started !== null) {
      items.push({
        id: "workflow",
        group: "workflow",
        start: wf.started,
        end: Math.max(wf.ended ?? now, wf.started + 1),
        content: wf.state,
        className: `workflow-span state-${wf.state}`,
        title: `${wf.state} · ${span((wf.ended ?? now) - wf.started)}`,
      });
    }
    const previous = {};
    for (const a of wf.attempts) {
      const group = `${a.compensation ? "c" : "t"}:${a.task}`;
      if (a.attempt === 0 || a.begin === null) {  // decided without running (Skipped)
        const at = a.ended ?? a.begin;
        if (at !== null) items.push(pointItem(group, a, at));
        continue;
      }
      const running = a.ended === null && !TERMINAL.has(wf.state);
      const end = a.ended ?? (running ? now : wf.ended ?? now);
      const key = group;
      const before = previous[key];
      if (before && before.ended !== null && a.begin > before.ended) {
        items.push({
          id: `backoff:${key}:${a.attempt}`,
          group,
          type: "background",
          start: before.ended,
          end: a.begin,
          content: `backoff ${span(a.begin - before.ended)}`,
          className: "backoff",
          task: a.task,
        });
      }
      previous[key] = a;
      const shownState = a.state === "Failed" && laterAttempt(wf, a) ? "Retrying" : a.state;
      items.push({
        id: `attempt:${key}:${a.attempt}`,
        group,
        start: a.begin,
        end: Math.max(end, a.begin + 1),
        content: `${a.compensation ? "↺ " : ""}#${a.attempt} ${shownState}`,
        className: `attempt state-${a.state}${a.compensation ? " compensation" : ""}${running ? " running" : ""}`,
        title: attemptTitle(a, end),
        task: a.task,
      });
    }
    const skipped = new Set(wf.attempts.filter((a) => a.attempt === 0).map((a) => a.task));
    for (const t of wf.transitions) {  // skips the conductor decided (no attempt row)
      if (t.to_state === "Skipped" && t.task_id && !skipped.has(t.task_id) && !t.compensation) {
        items.push(pointItem(`t:${t.task_id}`, { task: t.task_id, state: "Skipped", attempt: 0, reason: t.reason }, toMs(t.time)));
      }
    }
    timelineGroups.update(groups);
    timelineGroups.remove(timelineGroups.getIds().filter((id) => !groups.some((g) => g.id === id)));
    timelineItems.update(items);
    timelineItems.remove(timelineItems.getIds().filter((id) => !items.some((i) => i.id === id)));
    if (!userZoomed) fitTimeline(wf, now);
  }

  function fitTimeline(wf, now) {
    const starts = timelineItems.get().map((i) => +new Date(i.start));
    if (!starts.length) return;
    const begin = Math.min(...starts);
    const end = Math.max(...timelineItems.get().map((i) => +new Date(i.end ?? i.start)), wf.ended ?? now);
    const pad = Math.max((end - begin) * 0.04, 5);
    timeline.setWindow(begin - pad, end + pad, { animation: false });
  }

  function laterAttempt(wf, a) {
    return wf.attempts.some((b) => b.task === a.task && b.compensation === a.compensation && b.attempt > a.attempt);
  }

  function pointItem(group, a, at) {
    return {
      id: `point:${group}:${a.attempt}`,
      group,
      type: "point",
      start: at,
      content: a.state,
      className: `state-${a.state}`,
      title: a.reason ? `${a.state}: ${a.reason}` : a.state,
      task: a.task,
    };
  }

  function attemptTitle(a, end) {
    const lines = [
      `${a.task}${a.compensation ? " (compensation)" : ""} · attempt ${a.attempt} · ${a.state}`,
      `${clock(a.begin)} → ${a.ended !== null ? clock(a.ended) : "…"} (${span(end - a.begin)})`,
    ];
    if (a.scheduled !== null && a.started !== null) lines.push(`queued ${span(a.started - a.scheduled)}`);
    if (a.error) lines.push(`error: ${a.error.message ?? JSON.stringify(a.error)}`);
    return lines.join("<br>").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c])
      .replace(/&lt;br&gt;/g, "<br>");
  }

  // the tables

  function json(value) {
    if (value === null || value === undefined) return "";
    return h("pre", { class: "json", text: JSON.stringify(value, null, 2) });
  }

  function renderAttempts(wf) {
    const rows = wf.attempts.map((a) => h("tr", {
      "data-task": a.task,
      "data-attempt": a.attempt,
      "data-state": a.state,
      class: a.compensation ? "compensation" : null,
    },
      h("td", {}, h("span", { class: "mono", text: a.task }),
        a.compensation ? [" ", h("span", { class: "badge compensation", text: "↺ compensation" })] : null,
        a.type ? h("div", { class: "hint mono", text: a.type }) : null),
      h("td", { class: "num", text: a.attempt || "" }),
      h("td", {}, h("span", { class: `badge state state-${a.state}`, text: a.state }),
        a.reason ? h("div", { class: "hint", text: a.reason }) : null),
      h("td", { class: "num", text: clock(a.begin) }),
      h("td", { class: "num", text: clock(a.ended) }),
      h("td", { class: "num", text: span(a.durationMs) }),
      h("td", {}, json(a.input)),
      h("td", {}, json(a.output)),
      h("td", {}, json(a.error)),
    ));
    $("#attempts tbody").replaceChildren(...rows);
  }

  function renderWorkflowData(wf) {
    $("#workflow-data tbody").replaceChildren(
      h("tr", {}, h("td", {}, json(wf.input)), h("td", {}, json(wf.output)), h("td", {}, json(wf.error))),
    );
  }

  function renderTransitions(wf) {
    const rows = wf.transitions.map((t) => h("tr", { "data-task": t.task_id ?? "" },
      h("td", { class: "num", text: clock(toMs(t.time)) }),
      h("td", { class: "mono" }, t.task_id ?? "workflow",
        t.compensation ? [" ", h("span", { class: "badge compensation", text: "↺" })] : null),
      h("td", { class: "num", text: t.attempt ?? "" }),
      h("td", { text: t.from_state ?? "" }),
      h("td", {}, h("span", { class: `badge state state-${t.to_state}`, text: t.to_state })),
      h("td", { class: "num", text: t.duration_s != null ? span(t.duration_s * 1000) : "" }),
      h("td", { text: t.reason ?? "" }),
    ));
    $("#transitions tbody").replaceChildren(...rows);
  }

  async function cancel() {
    const id = view.workflowId;
    if (!id || !window.confirm(`Cancel workflow ${id}?`)) return;
    try {
      await api(`workflows/${encodeURIComponent(id)}/cancel`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ reason: "cancelled from the dashboard" }),
      });
    } catch (error) {
      if (error.status === 401 || error.status === 403) {
        const token = window.prompt("This API needs a token to cancel (PODIUM_API_TOKEN):");
        if (token) {
          sessionStorage.setItem("podium.token", token);
          return cancel();
        }
      }
      problem(`Cancel failed: ${error.message}`);
      return;
    }
    refresh();
  }

  // -- keeping live -----------------------------------------------------------------

  let refreshing = null;
  let again = false;
  let refreshTimer = null;

  /** Read the view's data again (one read at a time; a request during one runs after it). */
  function refresh() {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    const load = view.name === "workflow" ? loadWorkflow : loadList;
    refreshing = load()
      .then(() => problem(null))
      .catch((error) => problem(error.message || String(error)))
      .finally(() => {
        refreshing = null;
        if (again) {
          again = false;
          refresh();
        }
      });
    return refreshing;
  }

  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      refresh();
    }, REFRESH_DEBOUNCE_MS);
  }

  function concerns(event) {
    if (view.name !== "workflow") return true;
    try {
      const data = JSON.parse(event.data);
      const id = data.workflow_id ?? data.id ?? data.subject;
      return !id || id === view.workflowId;
    } catch (_) {
      return true;
    }
  }

  let stream = null;

  function listen() {
    if (!window.EventSource) return;
    stream = new EventSource("api/events");
    const onEvent = (event) => { if (concerns(event)) refreshSoon(); };
    stream.onmessage = onEvent;
    for (const name of ["workflow", "attempt", "change", "update"]) stream.addEventListener(name, onEvent);
    stream.onopen = () => { $("#live").dataset.live = "sse"; };
    stream.onerror = () => { $("#live").dataset.live = "polling"; };  // EventSource reconnects itself
  }

  function tick() {
    if (view.running) {
      if (stream?.readyState !== 1) refresh();
      else if (current && view.name === "workflow") {  // the running bars grow between events
        const tasks = taskStates(current);
        renderTimeline(current, tasks);
        renderHead(current);
      }
    }
  }

  // -- start ------------------------------------------------------------------------

  window.podiumDashboard = {
    graph: null,
    timeline: null,
    /** Each DAG node's state, as drawn (for people reading the page with tools). */
    nodeStates() {
      if (!graph) return {};
      return Object.fromEntries(graph.nodes().map((n) => [n.id(), n.data("state")]));
    },
    refresh,
  };

  function legend() {
    const items = TASK_STATES.map((s) => h("li", { style: `--dot: ${stateColour(s)}`, text: s }));
    items.push(h("li", { class: "compensation", text: "compensated (↺)" }));
    $("#legend").replaceChildren(...items);
  }

  document.addEventListener("DOMContentLoaded", () => {
    // cytoscape-dagre registers its layout with `window.cytoscape` when its script loads
    setUpList();
    legend();
    $("#cancel").addEventListener("click", cancel);
    window.addEventListener("hashchange", route);
    route();
    listen();
    setInterval(tick, POLL_MS);
    setInterval(() => { if (view.running && stream?.readyState === 1) refresh(); }, POLL_MS * 5);
  });
})();
