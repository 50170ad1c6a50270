// The console's pages: a small hash router over pachd's JSON routes, kept live by
// server-sent events (/api/events), never by polling.
"use strict";

const page = document.getElementById("page");
const NODE_W = 170, NODE_H = 64, PAD = 24;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}
function size(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = bytes, u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return u === 0 ? `${n} B` : `${n.toFixed(1)} ${units[u]}`;
}
function when(seconds) { return seconds ? new Date(seconds * 1000).toLocaleString() : "—"; }
function duration(job) {
  if (!job.started) return "—";
  const end = job.finished || Date.now() / 1000;
  return `${(end - job.started).toFixed(1)} s`;
}
function q(params) { return new URLSearchParams(params).toString(); }
function shortId(id) {  // job-named branches are 32 hex digits: keep their start
  const [branch, number] = id.split("/");
  return branch.length > 14 ? `${branch.slice(0, 10)}…/${number}` : id;
}
function commitLink(repo, id) { return el("a", { href: `#/files/${encodeURIComponent(repo)}/${id}/` }, `${repo}/${id}`); }

async function api(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  const body = await response.json();
  if (response.status === 401) throw Object.assign(new Error(body.error), { login: true });
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// -- pages -----------------------------------------------------------------------

async function dagPage() {
  const dag = await api("/api/dag");
  const width = Math.max(...dag.nodes.map(n => n.x), 0) + NODE_W + 2 * PAD;
  const height = Math.max(...dag.nodes.map(n => n.y), 0) + NODE_H + 2 * PAD;
  const at = Object.fromEntries(dag.nodes.map(n => [n.id, n]));
  const picture = svg("svg", { class: "dag", width, height, viewBox: `0 0 ${width} ${height}`, "data-testid": "dag" },
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
      svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#98a2b3" }))));
  for (const edge of dag.edges) {
    const a = at[edge.from], b = at[edge.to];
    const x1 = a.x + PAD + NODE_W, y1 = a.y + PAD + NODE_H / 2, x2 = b.x + PAD, y2 = b.y + PAD + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    picture.append(svg("path", { class: "edge", d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`,
      "data-edge": `${edge.from}->${edge.to}` }));
  }
  for (const node of dag.nodes) {
    const lines = node.kind === "repo"
      ? [`${size(node.size_bytes)}`, node.newest_commit ? `newest ${shortId(node.newest_commit)}` : "no commits"]
      : [`pipeline ${node.state}`, node.last_job ? `last job ${node.last_job.state}` : "no jobs yet"];
    const href = node.kind === "repo" ? `#/repos/${node.name}` : `#/jobs?pipeline=${node.name}`;
    const group = svg("a", { href }, svg("g", { class: `node ${node.kind}`, "data-node": node.id,
        transform: `translate(${node.x + PAD}, ${node.y + PAD})` },
      svg("rect", { width: NODE_W, height: NODE_H }),
      svg("text", { class: "title", x: 10, y: 20 }, node.name),
      svg("text", { x: 10, y: 38 }, lines[0]),
      svg("text", { x: 10, y: 54, class: "muted" }, lines[1])));
    picture.append(group);
  }
  page.replaceChildren(el("h1", {}, "Pipelines and data"),
    dag.nodes.length ? picture : el("p", { class: "muted" }, "No repos yet: pachctl create-repo data"));
}

async function repoPage(repo) {
  const info = await api(`/api/repos/${encodeURIComponent(repo)}`);
  const rows = info.commits.map(c => el("tr", { "data-commit": c.id },
    el("td", {}, commitLink(repo, c.id)), el("td", {}, c.parent ?? "—"),
    el("td", {}, when(c.started)), el("td", {}, c.open ? "open" : c.cancelled ? "cancelled" : when(c.finished)),
    el("td", {}, size(c.size_bytes)),
    el("td", {}, c.provenance.map(p => el("div", {}, commitLink(p.repo, p.id))))));
  page.replaceChildren(el("h1", {}, `Repo ${info.name}`),
    el("p", {}, `${size(info.size_bytes)} · created ${when(info.created)} · provenance: ${info.provenance.join(", ") || "none"}`),
    el("h2", {}, "Branches"), el("p", {}, info.branches.length ? info.branches.join(", ") : "none"),
    el("h2", {}, "Commits"),
    el("table", {}, el("tr", {}, ["ID", "Parent", "Started", "Finished", "Size", "Provenance"].map(h => el("th", {}, h))), rows));
}

async function filesPage(repo, commit, path) {
  const listing = await api(`/api/files?${q({ repo, commit, path })}`);
  const parts = path.split("/").filter(Boolean);
  const crumbs = el("p", { class: "crumbs" }, el("a", { href: `#/repos/${repo}` }, repo), " / ",
    el("a", { href: `#/files/${repo}/${commit}/` }, commit),
    parts.map((p, k) => [" / ", el("a", { href: `#/files/${repo}/${commit}/${parts.slice(0, k + 1).join("/")}` }, p)]));
  const rows = listing.files.map(f => el("tr", { "data-path": f.path },
    el("td", {}, el("a", { href: f.type === "dir" ? `#/files/${repo}/${commit}${f.path}` : `#/file/${repo}/${commit}${f.path}` },
      f.path.split("/").pop() + (f.type === "dir" ? "/" : ""))),
    el("td", {}, f.type), el("td", {}, size(f.size_bytes)), el("td", {}, when(f.modified))));
  page.replaceChildren(el("h1", {}, `Files of ${repo}/${commit}`), crumbs,
    el("table", {}, el("tr", {}, ["Name", "Type", "Size", "Modified"].map(h => el("th", {}, h))), rows));
}

async function filePage(repo, commit, path) {
  const source = `/api/file?${q({ repo, commit, path })}`;
  const response = await fetch(source, { credentials: "same-origin" });
  if (!response.ok) throw new Error((await response.json()).error);
  const kind = response.headers.get("Content-Type") || "";
  let shown;
  if (kind.startsWith("image/")) {
    shown = el("img", { class: "content", src: source, alt: path });
  } else if (kind.startsWith("text/")) {
    shown = el("pre", { "data-testid": "file-content" }, await response.text());
  } else {
    shown = el("p", { class: "muted" }, `Binary content (${kind}); download it to look inside.`);
  }
  const folder = path.slice(0, path.lastIndexOf("/") + 1);
  page.replaceChildren(el("h1", {}, path), el("p", { class: "crumbs" },
      el("a", { href: `#/files/${repo}/${commit}${folder}` }, `${repo}/${commit}${folder}`), " · ",
      el("a", { href: `${source}&download=1`, "data-testid": "download" }, "download")), shown);
}

function jobRow(job) {
  return el("tr", { "data-job": job.id },
    el("td", {}, el("a", { href: `#/jobs/${job.id}` }, job.id.slice(0, 12))), el("td", {}, job.pipeline || "—"),
    el("td", { class: `state ${job.state}` }, job.state), el("td", {}, when(job.started)), el("td", {}, duration(job)),
    el("td", {}, job.inputs.map(i => el("div", {}, commitLink(i.repo, i.id)))),
    el("td", {}, job.output ? commitLink(job.output.repo, job.output.id) : "—"),
    el("td", { class: "error" }, job.reason || ""));
}

async function jobsPage(pipeline) {
  const list = await api(`/api/jobs?${q(pipeline ? { pipeline } : {})}`);
  page.replaceChildren(el("h1", {}, pipeline ? `Jobs of ${pipeline}` : "Jobs"),
    list.jobs.length ? el("table", { "data-testid": "jobs" },
      el("tr", {}, ["Job", "Pipeline", "State", "Started", "Duration", "Inputs", "Output", "Reason"].map(h => el("th", {}, h))),
      list.jobs.map(jobRow)) : el("p", { class: "muted" }, "No jobs yet."));
}

// The failed pod, its code's exit code and its last lines (as pachctl inspect-job shows them).
function failureRows(failure) {
  if (!failure || failure.pod_index === null) return [];
  return [
    ["Failed pod", `${failure.pod_index}${failure.pod_name ? ` (${failure.pod_name})` : ""}`],
    ["Exit code", el("span", { "data-testid": "job-exit-code" }, failure.exit_code ?? "—")],
    ["Last lines", el("pre", { "data-testid": "job-last-lines" }, failure.last_lines.join("\n"))],
  ];
}

let logStream = null;
async function jobPage(id) {
  const job = await api(`/api/jobs/${id}`);
  const details = el("div", { id: "job-details" },
    el("table", {}, [
      ["State", el("span", { class: `state ${job.state}`, "data-testid": "job-state" }, job.state)],
      ["Pipeline", job.pipeline || "—"], ["Created", when(job.created)], ["Started", when(job.started)],
      ["Finished", when(job.finished)], ["Duration", duration(job)],
      ["Inputs", job.inputs.map(i => el("div", {}, commitLink(i.repo, i.id)))],
      ["Output", job.output ? commitLink(job.output.repo, job.output.id) : "—"],
      ["Command", el("code", {}, job.transform.cmd.join(" "))],
      ["Failure", el("span", { class: "error", "data-testid": "job-reason" }, job.reason || "")],
      ...failureRows(job.failure),
    ].map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))),
    el("h2", {}, "Pods"),
    el("table", {}, el("tr", {}, ["Index", "State", "Pod", "Attempt", "Commit"].map(h => el("th", {}, h))),
      job.pods.map(p => el("tr", {}, el("td", {}, p.index), el("td", { class: p.state }, p.state), el("td", {}, p.name || "—"),
        el("td", {}, p.attempt), el("td", {}, p.commit || "—")))));
  const existing = document.getElementById("job-details");
  if (existing && page.dataset.job === id) { existing.replaceWith(details); return; }
  const logs = el("pre", { id: "logs", "data-testid": "logs" });
  page.dataset.job = id;
  page.replaceChildren(el("h1", {}, `Job ${id}`), details, el("h2", {}, "Logs"), logs);
  logStream = new EventSource(`/api/jobs/${id}/logs`);
  logStream.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.end) { logStream.close(); if (!logs.textContent) logs.textContent = "(the job printed nothing)"; return; }
    logs.append(message.line + "\n");
  };
}

async function loginPage() {
  const input = el("input", { type: "password", placeholder: "token", "data-testid": "token" });
  const problem = el("p", { class: "error" });
  const form = el("form", { class: "login", onsubmit: async (event) => {
    event.preventDefault();
    const response = await fetch("/api/login", { method: "POST", body: JSON.stringify({ token: input.value }),
      headers: { "Content-Type": "application/json" }, credentials: "same-origin" });
    if (response.ok) { startEvents(); render(); } else problem.textContent = "That is not this pachd's token.";
  } }, el("p", {}, "This pachd asks for its token (the contents of --auth-token-file)."), input,
    el("button", { type: "submit" }, "Sign in"), problem);
  page.replaceChildren(el("h1", {}, "Sign in"), form);
}

// -- routing and live updates ----------------------------------------------------

function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const parts = (path || "/").split("/").slice(1).map(decodeURIComponent);
  document.querySelectorAll("nav a").forEach(a => a.classList.toggle("active", a.dataset.nav === (parts[0] === "jobs" ? "jobs" : "dag")));
  switch (parts[0]) {
    case "repos": return () => repoPage(parts[1]);
    case "files": return () => filesPage(parts[1], `${parts[2]}/${parts[3]}`, "/" + parts.slice(4).join("/"));
    case "file": return () => filePage(parts[1], `${parts[2]}/${parts[3]}`, "/" + parts.slice(4).join("/"));
    case "jobs": return parts[1] ? () => jobPage(parts[1]) : () => jobsPage(params.get("pipeline"));
    default: return () => dagPage();
  }
}

let rendering = Promise.resolve();
function render() {
  rendering = rendering.then(async () => {
    try { await route()(); } catch (err) {
      if (err.login) return loginPage();
      page.replaceChildren(el("p", { class: "error", "data-testid": "error" }, err.message));
    }
  });
  return rendering;
}

let events = null;
function startEvents() {
  if (events) events.close();
  events = new EventSource("/api/events");
  const live = document.getElementById("live");
  events.onopen = () => live.classList.add("on");
  events.onerror = () => live.classList.remove("on");
  events.onmessage = () => { if (!location.hash.startsWith("#/file/")) render(); };
}

window.addEventListener("hashchange", () => {
  if (logStream) { logStream.close(); logStream = null; }
  delete page.dataset.job;
  render();
});
startEvents();
render();
