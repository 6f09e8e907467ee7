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
.node.down{border-color:#999;background:#eee;color:#777}.node.learner{border-color:#2ca02c}
.role{font-weight:bold}.node button{font-size:11px;margin:2px 2px 0 0}
table.links{border-collapse:collapse;margin-top:8px}table.links td,table.links th{border:1px solid #ddd;padding:2px 6px;text-align:center}
td.link{cursor:pointer}td.up{background:#d9f2d9}td.cut{background:#f4c7c7}td.slow{background:#fff0c2}td.lossy{background:#ffd9b3}
.row{display:flex;gap:16px;flex-wrap:wrap;margin-top:8px}.box{flex:1;min-width:280px}
.log{height:140px;overflow:auto;font:11px monospace;background:#f6f6f6;border:1px solid #ddd;padding:4px;white-space:pre-wrap}
td.unknown{background:#eee;color:#777}
.services td,.services th{padding:2px 6px;text-align:left}
#error{color:#b00}
</style></head><body>
<h1>Clusters <small id="status"></small></h1>
<div>New cluster: <input id="newNodes" type="number" value="3" min="1" max="15" style="width:50px"> nodes <button id="createCluster">create</button> <span id="error"></span></div>
<div id="clusters"></div>
<script>
"use strict";
const clusters = new Map();  // id -> {el, stats, log: []}
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
function render(id) {
  const c = clusters.get(id); if (!c || !c.stats) return;
  const s = c.stats;
  const el = $("div", {class: "cluster", id: "cluster-" + id, "data-cluster": id});
  el.append($("h2", {}, "Cluster " + id + " ", $("span", {class: "leader", "data-leader": s.leader || ""}, "leader " + (s.leader || "none") + (s.term !== undefined && s.term !== null ? " (term " + s.term + ")" : "")),
    " ", $("button", {onclick: () => call("POST", "/clusters/" + id + "/heal").then(() => refresh(id))}, "heal"),
    " ", $("button", {onclick: () => { if (confirm("Delete cluster " + id + "?")) call("DELETE", "/clusters/" + id).then(loadClusters); }}, "delete cluster")));
  const nodes = $("div", {class: "nodes"});
  const ports = [];
  for (const n of s.nodes) {
    const address = n.address; const port = address.split(":")[1]; ports.push(address);
    const role = n.accessible === false ? "down" : n.state;
    const box = $("div", {class: "node " + role, "data-node": port, "data-role": role});
    box.append($("div", {}, $("b", {}, address), " ", $("span", {class: "role"}, role)));
    if (n.accessible !== false) {
      box.append($("div", {}, "term " + n.term + " · commit " + n.commitIndex + " · applied " + n.appliedIndex + " · log " + n.logLength));
      box.append($("div", {}, "load " + n.load.slots + "/" + n.capacity.slots + " slots · cpu " + Math.round(n.cpuUsage * 100) + "%"));
    } else { box.append($("div", {}, n.error || n.process || "")); }
    for (const action of ["kill", "pause", "resume", "restart", "isolate"]) {
      box.append($("button", {"data-action": action, onclick: () => call("POST", "/clusters/" + id + "/nodes/" + port + "/" + action).then(() => refresh(id))}, action));
    }
    box.append($("button", {"data-action": "lead", onclick: () => call("POST", "/clusters/" + id + "/leader", {node: Number(port)}).then(() => refresh(id))}, "make leader"));
    nodes.append(box);
  }
  el.append(nodes);
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
  for (const id of ids) { if (!clusters.has(id)) clusters.set(id, {log: []}); refresh(id); }
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
    refresh(data.cluster);
  });
}
loadClusters();
setInterval(() => { for (const id of clusters.keys()) refresh(id); }, 3000);
</script></body></html>
"""#
}
