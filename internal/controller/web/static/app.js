// netloom's web view: the lab list and a lab's topology, drawn as plain
// SVG and kept current by the controller's server-sent events. No
// dependencies: the controller serves this file from its binary.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  // Set once per page load: a test reads it to tell an update from a reload.
  window.netloomLoadedAt = Date.now();
  window.netloomUpdates = 0;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function when(t) {
    if (!t) return "never";
    const d = new Date(t);
    if (isNaN(d) || d.getFullYear() < 2000) return "never";
    const ago = Math.max(0, Math.round((Date.now() - d) / 1000));
    return d.toLocaleString() + " (" + ago + " s ago)";
  }

  // stream follows an event stream; EventSource reconnects by itself.
  function stream(url, handlers) {
    const conn = document.getElementById("conn");
    const es = new EventSource(url);
    const show = (state) => {
      conn.dataset.conn = state;
      conn.textContent = state;
    };
    es.onopen = () => show("live");
    es.onerror = () => show(es.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (ev) => {
        window.netloomUpdates++;
        fn(JSON.parse(ev.data));
      });
    }
    return es;
  }

  // ---- the lab list ----

  function overview() {
    stream("/ui/events", {
      overview: (o) => {
        const labs = document.querySelector("#labs tbody");
        labs.replaceChildren();
        for (const l of o.labs) {
          const tr = el("tr", { "data-lab-name": l.name, "data-state": l.state });
          const a = el("a", { href: "/ui/lab/" + encodeURIComponent(l.name) }, l.name);
          tr.append(el("td"), el("td", { class: "state " + l.state }, l.state + (l.state_error ? ": " + l.state_error : "")),
            el("td", {}, l.progress.nodes_up + " / " + l.progress.nodes),
            el("td", {}, l.progress.links_up + " / " + l.progress.links),
            el("td", {}, when(l.created_at)));
          tr.firstChild.append(a);
          labs.append(tr);
        }
        document.getElementById("no-labs").hidden = o.labs.length > 0;
        const hosts = document.querySelector("#hosts tbody");
        hosts.replaceChildren();
        for (const h of o.hosts) {
          const bad = (h.underlay || []).filter((u) => u.status !== "ok");
          const underlay = !h.underlay ? "-" : bad.length === 0 ? "ok (" + h.underlay.length + " peers)"
            : bad.map((u) => u.peer_ip + ": " + (u.reason || u.status)).join("; ");
          const tr = el("tr", { "data-host-name": h.name, "data-status": h.status });
          tr.append(el("td", {}, h.name), el("td", { class: "state " + (h.status === "online" ? "up" : "error") }, h.status),
            el("td", {}, h.data_ip), el("td", {}, h.underlay_mtu || "-"), el("td", {}, underlay),
            el("td", {}, when(h.last_heartbeat)), el("td", {}, h.version));
          hosts.append(tr);
        }
      },
      failure: (e) => console.warn("netloom:", e.error),
    });
  }

  // ---- a lab's topology ----

  const CELL_W = 150, CELL_H = 100, PAD = 30, HEAD = 30, GAP = 140, NODE_R = 20;

  // layout places hosts side by side, each a box with its nodes in columns
  // (so that links to other hosts fan out), in name order: a view that
  // changes only states keeps its picture.
  function layout(v) {
    const byHost = new Map();
    for (const n of v.nodes) {
      const h = n.placed_on || n.host || "(not placed)";
      if (!byHost.has(h)) byHost.set(h, []);
      byHost.get(h).push(n);
    }
    const hosts = [...byHost.keys()].sort();
    const boxes = [], at = new Map();
    let x = 10, height = 0;
    for (const h of hosts) {
      const nodes = byHost.get(h).sort((a, b) => a.name.localeCompare(b.name));
      const rows = Math.ceil(Math.sqrt(nodes.length)), cols = Math.ceil(nodes.length / rows);
      const w = Math.max(150, 2 * PAD + 2 * NODE_R + (cols - 1) * CELL_W + 20), hgt = HEAD + 2 * NODE_R + (rows - 1) * CELL_H + 2 * PAD;
      boxes.push({ host: h, x: x, y: 10, w: w, h: hgt });
      const left = x + (w - (cols - 1) * CELL_W) / 2;
      nodes.forEach((n, i) => {
        at.set(n.name, { x: left + Math.floor(i / rows) * CELL_W, y: 10 + HEAD + PAD + NODE_R + (i % rows) * CELL_H, node: n, host: h });
      });
      x += w + GAP;
      height = Math.max(height, hgt);
    }
    return { boxes: boxes, at: at, width: Math.max(x - GAP + 10, 300), height: height + 20 };
  }

  // onPick runs fn on a click, or Enter or Space on the focused element.
  function onPick(e, fn) {
    e.addEventListener("click", fn);
    e.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        fn();
      }
    });
  }

  function linkState(l) {
    return l.actual_state || "unknown";
  }

  function drawLab(v, select) {
    const top = document.getElementById("topology");
    const { boxes, at, width, height } = layout(v);
    top.replaceChildren();
    top.setAttribute("viewBox", "0 0 " + width + " " + height);
    top.setAttribute("width", width);
    top.setAttribute("height", height);
    for (const b of boxes) {
      const g = svg("g", { class: "host", "data-host": b.host });
      g.append(svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: 8 }),
        svg("text", { x: b.x + 10, y: b.y + 20, class: "host-name" }, b.host));
      top.append(g);
    }
    // Links between the same two nodes are bent apart.
    const pairs = new Map();
    for (const l of v.links) {
      const key = [l.source_node, l.target_node].sort().join(" ");
      pairs.set(key, (pairs.get(key) || 0) + 1);
    }
    const seen = new Map();
    for (const l of v.links) {
      const a = at.get(l.source_node), b = at.get(l.target_node);
      if (!a || !b) continue;
      const key = [l.source_node, l.target_node].sort().join(" ");
      const i = seen.get(key) || 0, n = pairs.get(key);
      seen.set(key, i + 1);
      const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
      // A same-host link arcs, so that it passes beside the nodes between
      // its ends; links between the same two nodes bend apart.
      const bend = (i - (n - 1) / 2) * 36 + (l.is_cross_host ? 0 : Math.min(0.3 * len, 60));
      const mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2;
      const cx = mx - ((b.y - a.y) / len) * bend, cy = my + ((b.x - a.x) / len) * bend;
      const state = linkState(l);
      const g = svg("g", {
        class: "link " + state + (l.is_cross_host ? " tunnel" : ""), tabindex: 0,
        "data-link": l.link_name, "data-state": state, "data-kind": l.is_cross_host ? "tunnel" : "same-host",
      });
      if (l.vni != null) g.setAttribute("data-vni", l.vni);
      const d = "M" + a.x + "," + a.y + " Q" + cx + "," + cy + " " + b.x + "," + b.y;
      g.append(svg("path", { d: d, class: "hit" }), svg("path", { d: d, class: "wire" }));
      g.append(svg("title", {}, l.link_name + ": " + state + (l.error ? " — " + l.error : "")));
      // Label at the curve's middle: interface names, and a tunnel's VNI.
      const lx = (a.x + 2 * cx + b.x) / 4, ly = (a.y + 2 * cy + b.y) / 4;
      if (l.is_cross_host) {
        g.append(svg("text", { x: lx, y: ly - 6, class: "vni" }, "VNI " + (l.vni != null ? l.vni : "?")));
      }
      g.append(svg("text", { x: lx, y: ly + 12, class: "ifaces" }, l.source_interface + " – " + l.target_interface));
      onPick(g, () => select({ link: l.link_name }));
      top.append(g);
    }
    for (const [name, p] of at) {
      const state = p.node.status || "pending";
      const g = svg("g", { class: "node " + state, tabindex: 0, "data-node": name, "data-state": state, "data-host": p.host });
      g.append(svg("circle", { cx: p.x, cy: p.y, r: NODE_R }),
        svg("text", { x: p.x, y: p.y + NODE_R + 16, class: "node-name" }, name),
        svg("title", {}, name + " on " + p.host + ": " + state + (p.node.error ? " — " + p.node.error : "")));
      onPick(g, () => select({ node: name }));
      top.append(g);
    }
  }

  function details(v, sel) {
    const aside = document.getElementById("details");
    aside.replaceChildren();
    const rows = [];
    let title = "";
    if (sel && sel.node) {
      const n = v.nodes.find((x) => x.name === sel.node);
      if (n) {
        title = "Node " + n.name;
        aside.dataset.node = n.name;
        rows.push(["State", n.status || "pending"], ["Host", n.placed_on || n.host || "not placed"],
          ["Kind", n.kind], ["Image", n.image], ["Management address", n.mgmt_address], ["Runtime id", n.runtime_id],
          ["Last verified", when(n.verified_at)], ["Last error", n.error || "none"]);
      }
    } else if (sel && sel.link) {
      const l = v.links.find((x) => x.link_name === sel.link);
      if (l) {
        title = "Link " + l.link_name;
        const tag = (t) => (t == null ? "-" : String(t));
        rows.push(["State", linkState(l)], ["Kind", l.is_cross_host ? "tunnel (VXLAN)" : "same host"],
          ["Endpoints", l.source_node + ":" + l.source_interface + " – " + l.target_node + ":" + l.target_interface],
          ["Hosts", l.source_host === l.target_host ? l.source_host : l.source_host + " – " + l.target_host],
          ["VNI", l.vni == null ? "-" : String(l.vni)],
          ["Tags", l.source_vlan_tag === l.target_vlan_tag ? tag(l.source_vlan_tag) : tag(l.source_vlan_tag) + " / " + tag(l.target_vlan_tag)],
          ["MTU", l.mtu == null ? "-" : String(l.mtu)],
          ["Tunnel port", l.tunnel ? l.tunnel.port_name : "-"],
          [l.source_host + " side", (l.source_status || "-") + (l.source_error ? ": " + l.source_error : "")],
          [l.target_host + " side", (l.target_status || "-") + (l.target_error ? ": " + l.target_error : "")],
          ["Last verified", when(l.verified_at)], ["Last error", l.error || "none"]);
      }
    }
    if (!title) {
      delete aside.dataset.node;
      aside.append(el("p", { class: "empty" }, "Click a node or a link for its details."));
      return;
    }
    aside.append(el("h3", {}, title));
    const dl = el("dl");
    for (const [k, val] of rows) {
      if (val === undefined || val === "") continue;
      dl.append(el("dt", {}, k), el("dd", { "data-field": k.toLowerCase().replace(/\s+/g, "-") }, val));
    }
    aside.append(dl);
  }

  // mgmt lists the lab's management network on each of its hosts.
  function mgmt(v) {
    const sec = document.getElementById("mgmt");
    sec.replaceChildren();
    if (!v.mgmt_subnet) return;
    sec.append(el("h3", {}, "Management network " + v.mgmt_subnet));
    const ul = el("ul");
    for (const m of v.mgmt || []) {
      const li = el("li", { "data-host": m.host, class: "state " + (m.status || "pending") },
        m.host + " " + m.address + (m.hub ? ", tunnel to " + m.hub + " (VNI " + m.vni + ")" : ", hub") + ": " +
        (m.status || "pending") + (m.error ? " — " + m.error : "") + ", verified " + when(m.verified_at));
      ul.append(li);
    }
    sec.append(ul);
  }

  function lab() {
    const name = decodeURIComponent(location.pathname.replace(/^\/ui\/lab\//, ""));
    document.getElementById("lab-name").textContent = name;
    document.title = "netloom lab " + name;
    let view = null, sel = null;
    const select = (s) => {
      sel = s;
      for (const e of document.querySelectorAll("#topology .selected")) e.classList.remove("selected");
      if (view) details(view, sel);
      const q = s.node ? '[data-node="' + CSS.escape(s.node) + '"]' : '[data-link="' + CSS.escape(s.link) + '"]';
      const e = document.querySelector("#topology " + q);
      if (e) e.classList.add("selected");
    };
    stream("/ui/events?lab=" + encodeURIComponent(name), {
      lab: (v) => {
        view = v;
        document.getElementById("lab-error").hidden = true;
        const st = document.getElementById("lab-state");
        st.textContent = v.state;
        st.className = "state " + v.state;
        const why = document.getElementById("lab-state-error");
        why.textContent = v.state_error || "";
        why.hidden = !v.state_error;
        document.getElementById("progress").textContent =
          "nodes up " + v.progress.nodes_up + "/" + v.progress.nodes + ", links up " + v.progress.links_up + "/" + v.progress.links;
        drawLab(v, select);
        mgmt(v);
        if (sel) select(sel);
      },
      missing: () => {
        view = null;
        const p = document.getElementById("lab-error");
        p.textContent = "No lab named " + name + ".";
        p.hidden = false;
        document.getElementById("lab-state-error").hidden = true;
        document.getElementById("topology").replaceChildren();
      },
      failure: (e) => console.warn("netloom:", e.error),
    });
  }

  if (document.body.dataset.page === "lab") lab();
  else overview();
})();
