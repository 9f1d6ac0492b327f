// The workflow page: the DAG (Cytoscape.js, laid out by dagre), kept live, and a task's panel.
(function () {
  const box = document.getElementById("dag");
  const panel = document.getElementById("task");
  const colors = {Pending: "#b0b7c3", Running: "#2f80ed", Succeeded: "#27ae60", Failed: "#eb5757", Skipped: "#d9d9d9"};
  const expanded = new Set();
  let selected = null;
  const cy = cytoscape({
    container: box, minZoom: 0.05, maxZoom: 3,
    style: [
      {selector: "node", style: {"label": "data(label)", "shape": "round-rectangle", "width": (n) => 24 + 7.5 * n.data("label").length, "height": 28,
        "padding": "8px", "text-valign": "center", "color": "#fff", "font-size": 12, "min-zoomed-font-size": 6, "background-color": "data(color)"}},
      {selector: "node[kind = 'group']", style: {"shape": "barrel", "border-width": 3, "border-color": "#555"}},
      {selector: "node.match", style: {"border-width": 4, "border-color": "#f2c94c"}},
      {selector: "node:selected", style: {"border-width": 4, "border-color": "#222"}},
      {selector: "edge", style: {"curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
        "line-color": "#9aa3ad", "target-arrow-color": "#9aa3ad", "label": "data(label)", "font-size": 10,
        "text-wrap": "wrap", "text-background-color": "#fff", "text-background-opacity": 0.85, "color": "#333",
        "min-zoomed-font-size": 6}},
    ],
  });
  window.ferryGraph = cy;

  function fit() {
    // A small graph is not blown up to fill the pane.
    cy.fit(undefined, 30);
    if (cy.zoom() > 1.2) { cy.zoom(1.2); cy.center(); }
  }
  // dagre's default ranking (network simplex) recurses along the graph: past a few thousand nodes
  // it overflows the stack ("Maximum call stack size exceeded") and the graph is never drawn. A
  // large graph is ranked by longest path instead; should dagre still fail, a plain layered
  // layout draws it rather than nothing.
  const LARGE = 1000;
  function layout() {
    const options = {name: "dagre", rankDir: "TB", nodeSep: 40, rankSep: 80, edgeSep: 10, animate: false};
    if (cy.nodes().length > LARGE) options.ranker = "longest-path";
    try {
      cy.layout(options).run();
    } catch (error) {
      console.warn("dagre could not lay this graph out:", error);
      cy.layout({name: "breadthfirst", directed: true, animate: false}).run();
    }
  }
  const element = (node) => ({group: "nodes", data: {...node, color: colors[node.phase] || "#888"}});
  async function load(relayout) {
    const params = new URLSearchParams();
    for (const group of expanded) params.append("expand", group);
    const response = await fetch(box.dataset.graph + "?" + params);
    if (!response.ok) return;
    const graph = await response.json();
    const ids = new Set([...graph.nodes.map((n) => n.id), ...graph.edges.map((e) => e.id)]);
    const same = cy.elements().length === ids.size && cy.elements().every((e) => ids.has(e.id()));
    if (same && !relayout) {
      cy.batch(() => {
        for (const node of graph.nodes) cy.getElementById(node.id).data({...node, color: colors[node.phase] || "#888"});
        for (const edge of graph.edges) cy.getElementById(edge.id).data(edge);
      });
    } else {
      cy.batch(() => {
        cy.elements().remove();
        cy.add([...graph.nodes.map(element), ...graph.edges.map((e) => ({group: "edges", data: e}))]);
      });
      layout();
      fit();
    }
    box.dataset.ready = "1";
    const s = graph.summary;
    const phase = document.getElementById("wf-phase");
    phase.textContent = s.phase; phase.className = "phase phase-" + s.phase;
    document.getElementById("wf-progress").textContent = s.progress || "";
    document.getElementById("wf-duration").textContent = s.duration || "";
    document.getElementById("wf-message").textContent = s.message || "";
    if (selected) showTask(selected, true);
  }

  async function showTask(name, quietly) {
    selected = name;
    const response = await fetch(box.dataset.task + encodeURIComponent(name));
    if (!response.ok) return;
    const open = document.getElementById("log");
    const following = open && !open.hidden ? open.dataset.url : null;
    panel.innerHTML = await response.text();
    if (following && quietly) {
      const log = document.getElementById("log");
      log.dataset.url = following;
      ferry.stream(following, log);
    }
  }

  cy.on("tap", "node", (event) => {
    const node = event.target.data();
    if (node.kind === "group") { expanded.add(node.id); load(true); return; }
    showTask(node.id);
  });
  panel.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-log]");
    if (!button) return;
    const target = document.getElementById("log");
    target.dataset.url = button.dataset.log;
    ferry.stream(button.dataset.log, target);
  });
  document.getElementById("fit").addEventListener("click", fit);
  document.getElementById("find").addEventListener("input", (event) => {
    const text = event.target.value.trim().toLowerCase();
    cy.nodes().removeClass("match");
    if (!text) return;
    const found = cy.nodes().filter((n) => n.data("label").toLowerCase().includes(text) ||
      (n.data("members") || []).some((m) => m.toLowerCase().includes(text)));
    found.addClass("match");
    if (found.length) cy.animate({fit: {eles: found, padding: 60}, duration: 200});
  });
  load(true);
  ferry.live(box.dataset.live, () => load(false));
})();
