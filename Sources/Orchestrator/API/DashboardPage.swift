/// `GET /dashboard`: one self-contained page (no framework, no font or script from
/// elsewhere) that shows every cluster live from `GET /events` and the stats routes, and
/// injects faults by click through the orchestrator's API.
enum DashboardPage {
    static let html = #"""
<!doctype html><html lang="en"><head><meta charset="utf-8"><title>orchestrator dashboard</title><link rel="icon" href="data:,">
<style>
body{font:13px system-ui,sans-serif;margin:12px;color:#222;background:#fafafa}
h1{font-size:18px;margin:0 0 8px}h2{font-size:15px;margin:0 0 6px}
.cluster{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px;margin-bottom:12px}
.nodes{display:flex;gap:8px;flex-wrap:wrap}
.node{border:2px solid #aaa;border-radius:6px;padding:6px;min-width:150px}
.node.leader{border-color:#1f4e79;background:#e6eef7}.node.candidate{border-color:#ff7f0e}
.node.down{border-color:#999;background:#eee;color:#777}.node.paused{border-color:#9467bd;background:#f1ecf7;color:#555}.node.learner{border-color:#2ca02c}
.role{font-weight:bold}.node button{font-size:11px;margin:2px 2px 0 0}
table.links{border-collapse:collapse;margin-top:8px}table.links td,table.links th{border:1px solid #ddd;padding:2px 6px;text-align:center}
td.link{cursor:pointer}td.up{background:#d9f2d9}td.cut{background:#f4c7c7}td.slow{background:#fff0c2}td.lossy{background:#ffd9b3}
.row{display:flex;gap:16px;flex-wrap:wrap;margin-top:8px}.box{flex:1;min-width:280px;overflow-x:auto}
.log{height:140px;overflow:auto;font:11px monospace;background:#f6f6f6;border:1px solid #ddd;padding:4px;white-space:pre-wrap}
td.unknown{background:#eee;color:#777}
.services td,.services th{padding:2px 6px;text-align:left}
#error{color:#b00}
svg.timeline{width:100%;max-width:1200px;height:auto;background:#fcfcfc;border:1px solid #ddd}
.rate{font:12px monospace}.node select{font-size:11px}
#experiments textarea{width:100%;height:110px;font:11px monospace}
#experiments table td{padding:2px 6px}
</style></head><body>
<h1>Clusters <small id="status"></small></h1>
<div>New cluster: <input id="newNodes" type="number" value="3" min="1" max="15" style="width:50px"> nodes <button id="createCluster">create</button> <span id="error"></span></div>
<div id="clusters"></div>
<details id="experiments"><summary><b>Experiments</b> (one at a time; the same workload and faults on clusters of their own)</summary>
<textarea id="plan" spellcheck="false">{"name": "dashboard", "seconds": 10,
 "clusters": [{"name": "fast", "nodes": 3, "heartbeatMs": 20, "electionTimeoutMs": 150},
              {"name": "default", "nodes": 3, "heartbeatMs": 50, "electionTimeoutMs": 500}],
 "workload": {"clients": 2, "mix": {"create": 30, "scale": 30, "read": 35, "delete": 5}},
 "faults": [{"at": 3, "action": "kill-leader"}, {"at": 6, "action": "restart"}]}</textarea>
<button id="startExperiment">start</button> <table id="experimentList"></table></details>
<script>
"use strict";
const clusters = new Map();  // id -> {el, stats, log: [], roles: [], faults: [], rates: [], groups: {}}
const windowSeconds = 120;
const roleColour = {leader: "#1f4e79", candidate: "#ff7f0e", follower: "#b7cde3", down: "#bbb", paused: "#999", unreachable: "#ddd", learner: "#2ca02c"};
function newCluster() { return {log: [], roles: [], faults: [], rates: [], groups: {}}; }
const $ = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) { if (k.startsWith("on")) el.addEventListener(k.slice(2), v); else el.setAttribute(k, v); }
  for (const c of children) el.append(c);
  return el;
};
function showError(text) { document.getElementById("error").textContent = text || ""; }
async function call(method, path, body) {
  const options = {method, headers: {"Content-Type": "application/json"}};
  if (body !== undefined) options.body = JSON.stringify(body);
  const response = await fetch(path, options);
  const text = await response.text();
  if (!response.ok) { let message = text; try { message = JSON.parse(text).error; } catch (e) {} showError(method + " " + path + ": " + message); return null; }
  showError("");
  return text ? JSON.parse(text) : {};
}
function linkClass(state) {
  if (state === undefined || state === null) return "unknown";
  if (state === 1 || state === true) return "up";
  if (state === 0 || state === false) return "cut";
  if (state && state.up === false) return "cut";
  if (state && state.loss > 0) return "lossy";
  if (state && state.delayMs > 0) return "slow";
  return "up";
}
function nextLink(cls) { return {up: {up: false}, cut: {up: true, delayMs: 200}, slow: {up: true, loss: 0.3}, lossy: {up: true}, unknown: {up: true}}[cls]; }
function svg(tag, attrs = {}, text) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}
// Roles per node over the last two minutes (a lane each; leaders marked with their term),
// faults as red lines.
function timeline(c, ports) {
  // The last two minutes, or since the first thing seen when that is more recent.
  const now = Date.now() / 1000, earliest = Math.min(now - 10, ...c.roles.map(r => r.time - 1));
  const span = Math.min(windowSeconds, now - earliest), start = now - span, width = 1200, lane = 14, left = 44;
  const x = t => left + (Math.max(t, start) - start) / span * (width - left);
  const box = svg("svg", {class: "timeline", viewBox: "0 0 " + width + " " + (ports.length * lane + 16)});
  ports.forEach((port, row) => {
    const y = row * lane + 2;
    box.append(svg("text", {x: 2, y: y + 10, "font-size": 10}, port));
    const changes = c.roles.filter(r => r.node === port);
    changes.forEach((r, i) => {
      const end = i + 1 < changes.length ? changes[i + 1].time : now;
      if (end < start) return;
      const rect = svg("rect", {x: x(r.time), y, width: Math.max(1, x(end) - x(r.time)), height: lane - 3, fill: roleColour[r.role] || "#eee", "data-role": r.role});
      rect.append(svg("title", {}, port + " " + r.role + (r.term !== undefined ? " term " + r.term : "")));
      box.append(rect);
      if (r.role === "leader" && x(end) - x(r.time) > 18) box.append(svg("text", {x: x(r.time) + 2, y: y + 9, "font-size": 9, fill: "#fff"}, "T" + r.term));
    });
  });
  for (const f of c.faults) {
    if (f.time < start) continue;
    const line = svg("line", {x1: x(f.time), x2: x(f.time), y1: 0, y2: ports.length * lane + 2, stroke: "#d62728", "stroke-width": 1.5, class: "fault"});
    line.append(svg("title", {}, f.text));
    box.append(line);
  }
  const bottom = ports.length * lane + 13;
  box.append(svg("text", {x: left, y: bottom, "font-size": 9}, "-" + Math.round(span) + " s"));
  box.append(svg("text", {x: width - 20, y: bottom, "font-size": 9}, "now"));
  return box;
}
// Commits per second over the last samples, as a sparkline, with the latest latency.
function rateView(c) {
  const last = c.rates[c.rates.length - 1];
  const text = last ? last.perSecond + " commits/s" + (last.latencyMs ? " · client commit p50 " + last.latencyMs.p50 + " ms, p99 " + last.latencyMs.p99 + " ms (" + last.latencyMs.requests + " requests)" : "") : "no commits seen yet";
  const width = 200, height = 24, peak = Math.max(1, ...c.rates.map(r => r.perSecond));
  const line = svg("svg", {width, height, viewBox: "0 0 " + width + " " + height});
  if (c.rates.length < 2) return $("div", {class: "rate"}, text);
  {
    const points = c.rates.map((r, i) => (i / (c.rates.length - 1) * width).toFixed(1) + "," + (height - 2 - r.perSecond / peak * (height - 4)).toFixed(1)).join(" ");
    line.append(svg("polyline", {points, fill: "none", stroke: "#1f4e79", "stroke-width": 1.5}));
  }
  return $("div", {class: "rate"}, line, " ", text);
}
function render(id) {
  const c = clusters.get(id); if (!c || !c.stats) return;
  const s = c.stats;
  const el = $("div", {class: "cluster", id: "cluster-" + id, "data-cluster": id});
  el.append($("h2", {}, "Cluster " + id + " ", $("span", {class: "leader", "data-leader": s.leader || ""}, "leader " + (s.leader || "none") + (s.term !== undefined && s.term !== null ? " (term " + s.term + ")" : "")),
    " ", $("button", {onclick: () => call("POST", "/clusters/" + id + "/heal").then(() => refresh(id))}, "heal"),
    " ", $("button", {class: "partition", onclick: () => partition(id)}, "partition by groups"),
    " ", $("button", {class: "resize", onclick: () => { const n = prompt("nodes", s.nodes.length); if (n !== null) { showError("resizing cluster " + id + "…"); call("PUT", "/clusters/" + id, {nodes: Number(n)}).then(() => refresh(id)); } }}, "resize"),
    " ", $("button", {onclick: () => { if (confirm("Delete cluster " + id + "?")) call("DELETE", "/clusters/" + id).then(loadClusters); }}, "delete cluster")));
  el.append(rateView(c));
  const nodes = $("div", {class: "nodes"});
  const ports = [];
  for (const n of s.nodes) {
    const address = n.address; const port = address.split(":")[1]; ports.push(address);
    const leaderStats = s.nodes.find(x => x.address === s.leader) || {};
    const role = n.accessible === false ? (n.process === "paused" ? "paused" : "down")
      : ((leaderStats.learners || []).includes(address) ? "learner" : n.state);
    const box = $("div", {class: "node " + role, "data-node": port, "data-role": role});
    box.append($("div", {}, $("b", {}, address), " ", $("span", {class: "role"}, role)));
    if (n.accessible !== false) {
      box.append($("div", {}, "term " + n.term + " · commit " + n.commitIndex + " · applied " + n.appliedIndex + " · log " + n.logLength));
      box.append($("div", {}, "load " + n.load.slots + "/" + n.capacity.slots + " slots · cpu " + Math.round(n.cpuUsage * 100) + "%"));
    } else { box.append($("div", {}, n.error || n.process || "")); }
    for (const action of ["kill", "pause", "resume", "restart", "isolate"]) {
      box.append($("button", {"data-action": action, onclick: () => call("POST", "/clusters/" + id + "/nodes/" + port + "/" + action).then(() => refresh(id))}, action));
    }
    const group = $("select", {class: "group", title: "group for 'partition by groups'", onchange: (e) => { c.groups[port] = e.target.value; }}, ...["A", "B", "C"].map(g => $("option", {value: g}, "group " + g)));
    group.value = c.groups[port] || "A";
    box.append($("div", {}, group));
    box.append($("button", {"data-action": "lead", onclick: () => call("POST", "/clusters/" + id + "/leader", {node: Number(port)}).then(() => refresh(id))}, "make leader"));
    nodes.append(box);
  }
  el.append(nodes);
  for (const n of s.nodes) {  // a node the event stream has not described yet starts from what stats say now
    const port = n.address.split(":")[1];
    if (!c.roles.some(r => r.node === port)) c.roles.push({time: Date.now() / 1000, node: port, role: n.accessible === false ? "down" : n.state, term: n.term});
  }
  el.append($("div", {class: "box"}, $("b", {}, "Timeline (roles per node, faults in red; hover for detail)"), timeline(c, ports.map(a => a.split(":")[1]))));
  const table = $("table", {class: "links"});
  table.append($("tr", {}, $("th", {}, "from \\ to"), ...ports.map(p => $("th", {}, p.split(":")[1]))));
  for (const from of ports) {
    const row = $("tr", {}, $("th", {}, from.split(":")[1]));
    for (const to of ports) {
      if (from === to) { row.append($("td", {}, "·")); continue; }
      const state = (s.links[from] || {})[to];
      const cls = linkClass(state);
      row.append($("td", {class: "link " + cls, "data-from": from.split(":")[1], "data-to": to.split(":")[1], "data-state": cls, title: "click: " + cls + " → next",
        onclick: () => call("POST", "/clusters/" + id + "/links", Object.assign({from: Number(from.split(":")[1]), to: Number(to.split(":")[1])}, nextLink(cls))).then(() => refresh(id))}, cls));
    }
    table.append(row);
  }
  const services = $("table", {class: "services"}, $("tr", {}, $("th", {}, "id"), $("th", {}, "name"), $("th", {}, "replicas"), $("th", {}, "placement"), $("th", {}, "")));
  for (const sv of s.services.slice(-20)) {
    services.append($("tr", {"data-service": sv.id}, $("td", {}, String(sv.id)), $("td", {}, sv.name || ""), $("td", {}, sv.placed + "/" + sv.replicas),
      $("td", {class: "placement"}, Object.entries(sv.placement).map(([k, v]) => k.split(":")[1] + "×" + v).join(" ")),
      $("td", {}, $("button", {onclick: () => { const n = prompt("replicas", sv.replicas); if (n !== null) call("PATCH", "/clusters/" + id + "/services/" + sv.id, {replicas: Number(n)}).then(() => refresh(id)); }}, "scale"),
        $("button", {onclick: () => call("DELETE", "/clusters/" + id + "/services/" + sv.id).then(() => refresh(id))}, "delete"))));
  }
  if (s.servicesError) services.append($("tr", {}, $("td", {colspan: 5, class: "services-error"}, "services not readable now: " + s.servicesError)));
  const replicasInput = $("input", {type: "number", value: "3", min: "1", style: "width:50px", class: "new-replicas"});
  const submit = $("div", {}, "New service: ", replicasInput, " replicas ",
    $("button", {class: "submit-service", onclick: () => call("POST", "/clusters/" + id + "/service", {container: {name: "web-" + Date.now() % 100000, replicas: Number(replicasInput.value)}}).then(() => refresh(id))}, "submit"));
  const log = $("div", {class: "log"}); log.textContent = c.log.slice(-200).join("\n");
  el.append($("div", {class: "row"}, $("div", {class: "box"}, $("b", {}, "Links (row → column)"), table),
    $("div", {class: "box"}, $("b", {}, "Services"), services, submit), $("div", {class: "box"}, $("b", {}, "Events"), log)));
  if (c.el && c.el.parentNode) c.el.replaceWith(el); else document.getElementById("clusters").append(el);
  c.el = el;
  log.scrollTop = log.scrollHeight;
}
function partition(id) {
  const c = clusters.get(id); if (!c || !c.stats) return;
  const byGroup = {};
  for (const n of c.stats.nodes) { const port = n.address.split(":")[1]; (byGroup[c.groups[port] || "A"] ||= []).push(Number(port)); }
  const groups = Object.keys(byGroup).sort().map(g => byGroup[g]);
  if (groups.length < 2) { showError("choose at least two groups on the nodes first"); return; }
  call("POST", "/clusters/" + id + "/partition", {groups}).then(() => refresh(id));
}
async function loadExperiments() {
  const list = await fetch("/experiments").then(r => r.ok ? r.json() : {results: []}).catch(() => ({results: []}));
  const table = document.getElementById("experimentList"); table.replaceChildren();
  for (const e of list.results.slice().reverse()) {
    const p = e.progress;
    table.append($("tr", {"data-experiment": e.id}, $("td", {}, e.id), $("td", {}, e.name), $("td", {class: "state"}, p.state + (p.verdict ? " · " + p.verdict : "")),
      $("td", {}, Math.round(p.elapsedSeconds) + " / " + Math.round(p.totalSeconds) + " s · " + p.operations + " operations"),
      $("td", {}, e.report ? $("a", {href: "/experiments/" + e.id + "/report", target: "_blank"}, "report") : (["finished", "cancelled", "failed"].includes(p.state) ? "" : $("button", {onclick: () => call("DELETE", "/experiments/" + e.id).then(loadExperiments)}, "cancel")))));
  }
  if (list.results.some(e => !["finished", "cancelled", "failed"].includes(e.progress.state))) setTimeout(loadExperiments, 1000);
}
document.getElementById("startExperiment").addEventListener("click", () => {
  let plan; try { plan = JSON.parse(document.getElementById("plan").value); } catch (e) { showError("the plan is not JSON: " + e.message); return; }
  call("POST", "/experiments", plan).then(loadExperiments);
});
async function refresh(id) {
  const c = clusters.get(id); if (!c) return;
  if (c.pending) { c.again = true; return; }
  c.pending = true;
  try { const stats = await fetch("/clusters/" + id + "/stats").then(r => r.ok ? r.json() : null); if (stats) { c.stats = stats; render(id); } }
  catch (e) {}
  c.pending = false;
  if (c.again) { c.again = false; setTimeout(() => refresh(id), 150); }
}
async function loadClusters() {
  const list = await fetch("/clusters").then(r => r.json());
  const ids = list.results.map(x => x.id);
  for (const [id, c] of clusters) if (!ids.includes(id)) { if (c.el) c.el.remove(); clusters.delete(id); }
  for (const id of ids) { if (!clusters.has(id)) clusters.set(id, newCluster()); refresh(id); }
}
document.getElementById("createCluster").addEventListener("click", () =>
  call("POST", "/clusters", {nodes: Number(document.getElementById("newNodes").value)}).then(loadClusters));
const source = new EventSource("/events");
source.onopen = () => { document.getElementById("status").textContent = "live"; };
source.onerror = () => { document.getElementById("status").textContent = "reconnecting…"; };
for (const type of ["role", "leader", "commit", "links", "fault", "change", "cluster", "skipped"]) {
  source.addEventListener(type, (message) => {
    const data = JSON.parse(message.data);
    if (type === "cluster") { loadClusters(); return; }
    const c = clusters.get(data.cluster); if (!c) return;
    const time = new Date(data.time * 1000).toISOString().slice(11, 23);
    const detail = Object.entries(data).filter(([k]) => !["id", "time", "type", "cluster"].includes(k)).map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v)).join(" ");
    c.log.push(time + " " + type + " " + detail); if (c.log.length > 500) c.log.splice(0, c.log.length - 500);
    if (type === "role") c.roles.push({time: data.time, node: String(data.node), role: data.process !== "running" ? (data.process === "paused" ? "paused" : "down") : data.role, term: data.term});
    if (type === "fault" || type === "change") c.faults.push({time: data.time, text: time + " " + type + " " + detail});
    if (type === "commit") {  // only the rate changes: no need to ask the nodes again
      c.rates.push({perSecond: data.perSecond, latencyMs: data.latencyMs}); if (c.rates.length > 60) c.rates.shift();
      const rate = c.el && c.el.querySelector(".rate"); if (rate) rate.replaceWith(rateView(c));
      return;
    }
    const horizon = Date.now() / 1000 - 2 * windowSeconds;
    if (c.roles.length > 2000 || (c.roles[0] && c.roles[0].time < horizon)) {
      // Keep what is recent and, per node, the last change before it (one pass from the end).
      const kept = [], seen = new Set();
      for (let i = c.roles.length - 1; i >= 0; i--) {
        const r = c.roles[i];
        if (r.time >= horizon) kept.push(r); else if (!seen.has(r.node)) { seen.add(r.node); kept.push(r); }
      }
      c.roles = kept.reverse();
    }
    if (c.faults.length > 200) c.faults.splice(0, c.faults.length - 200);
    refresh(data.cluster);
  });
}
loadClusters();
loadExperiments();
// Events drive refreshes; this catches what no event reports (loads, CPU) without asking
// 20 clusters' nodes more than every 10 s.
setInterval(() => { for (const id of clusters.keys()) refresh(id); }, 10000);
</script></body></html>
"""#
}
