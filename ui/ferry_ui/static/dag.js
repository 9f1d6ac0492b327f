// The workflow page: the DAG (Cytoscape.js, laid out by dagre), kept live, and a task's panel.
//
// The server sends the graph already folded: big fan-outs, and in a large graph families, chains
// and depths, are one node each (graph.py), so what is drawn stays a few hundred nodes whatever
// the workflow's size. A group expands on a click; a search finds tasks inside groups too and
// expands the group that holds the one it reveals; "fold all" draws the folded graph again.
(function () {
  const box = document.getElementById("dag");
  const panel = document.getElementById("task");
  const find = document.getElementById("find");
  const foldAll = document.getElementById("fold");
  const colors = {Pending: "#b0b7c3", Running: "#2f80ed", Succeeded: "#27ae60", Failed: "#eb5757", Skipped: "#d9d9d9"};
  const expanded = new Set();
  let selected = null;
  let unitsQuery = "";  // the selected map's page of units ("?phase=Failed&page=2")
  let cy = null;

  const style = [
    {selector: "node", style: {"label": "data(label)", "shape": "round-rectangle", "width": "data(width)", "height": 28,
      "padding": "8px", "text-valign": "center", "color": "#fff", "font-size": 12, "min-zoomed-font-size": 6, "background-color": "data(color)"}},
    {selector: "node[kind = 'group']", style: {"shape": "barrel", "border-width": 3, "border-color": "#555"}},
    // A map is one node whatever its size; its pie shows the share of its units by phase.
    {selector: "node[kind = 'map']", style: {"shape": "round-rectangle", "height": 40, "text-wrap": "wrap",
      "border-width": 3, "border-style": "double", "border-color": "#555", "pie-size": "100%",
      "pie-1-background-color": "#2e7d32", "pie-1-background-size": "data(pie.succeeded)",
      "pie-2-background-color": "#1565c0", "pie-2-background-size": "data(pie.running)",
      "pie-3-background-color": "#c62828", "pie-3-background-size": "data(pie.failed)"}},
    {selector: "node.match", style: {"border-width": 4, "border-color": "#f2c94c"}},
    {selector: "node:selected", style: {"border-width": 4, "border-color": "#222"}},
    {selector: "edge", style: {"curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
      "line-color": "#9aa3ad", "target-arrow-color": "#9aa3ad", "label": "data(label)", "font-size": 10,
      "text-wrap": "wrap", "text-background-color": "#fff", "text-background-opacity": 0.85, "color": "#333",
      "min-zoomed-font-size": 6}},
  ];
  // A drawing of more elements than this hides its edges while the view moves (Cytoscape's own
  // option), so a pan or a zoom redraws the nodes only.
  const BUSY = 1500;
  function create(size) {
    cy = cytoscape({container: box, minZoom: 0.02, maxZoom: 3, style, hideEdgesOnViewport: size > BUSY});
    window.ferryGraph = cy;
    cy.on("tap", "node", (event) => {
      const node = event.target.data();
      if (node.kind === "group") { expanded.add(node.id); load(true); return; }
      showTask(node.id);
    });
  }

  function fit() {
    // A small graph is not blown up to fill the pane.
    cy.fit(undefined, 30);
    if (cy.zoom() > 1.2) { cy.zoom(1.2); cy.center(); }
  }
  // dagre's default ranking (network simplex) recurses along the graph: past a few thousand nodes
  // it overflows the stack ("Maximum call stack size exceeded") and the graph is never drawn. A
  // large graph (one with its groups expanded) is ranked by longest path instead; should dagre
  // still fail, a plain layered layout draws it rather than nothing.
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
  const element = (node) => ({group: "nodes", data: {...node, color: colors[node.phase] || "#888",
                                                      width: 24 + 7.5 * node.label.length}});

  async function fetchGraph() {
    const first = window.ferryGraphRequest;  // asked for by the page before the scripts loaded
    window.ferryGraphRequest = null;
    if (first && !expanded.size) return first;
    const params = new URLSearchParams();
    for (const group of expanded) params.append("expand", group);
    return fetch(box.dataset.graph + "?" + params);
  }
  async function load(relayout) {
    const response = await fetchGraph();
    if (!response.ok) return;
    const graph = await response.json();
    if (!cy) create(graph.nodes.length + graph.edges.length);
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
      highlight(find.value);
    }
    foldAll.hidden = !expanded.size;
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
    if (name !== selected) unitsQuery = "";  // a map's page and filter are the task's own
    selected = name;
    const response = await fetch(box.dataset.task + encodeURIComponent(name) + unitsQuery);
    if (!response.ok) return;
    const open = document.getElementById("log");
    const following = open && !open.hidden ? open.dataset.url : null;
    panel.innerHTML = await response.text();  // the server's fragment (ok only), every name in it escaped
    if (following && quietly) {
      const log = document.getElementById("log");
      log.dataset.url = following;
      ferry.stream(following, log);
    }
  }

  // Search: tasks whose name holds the text are marked, and so are the groups holding such tasks.
  // A task named exactly, or the first one found on Enter, is revealed: its group expanded, the
  // view moved to it and its panel opened.
  const members = (node) => node.data("members") || [];
  function highlight(value) {
    const text = value.trim().toLowerCase();
    cy.nodes().removeClass("match");
    if (!text) return cy.collection();
    const found = cy.nodes().filter((n) => n.data("label").toLowerCase().includes(text) ||
      members(n).some((m) => m.toLowerCase().includes(text)));
    found.addClass("match");
    return found;
  }
  function firstTask(value, exact) {
    const text = value.trim().toLowerCase();
    const hit = exact ? (name) => name.toLowerCase() === text : (name) => name.toLowerCase().includes(text);
    const task = cy.nodes("[kind = 'task']").filter((n) => hit(n.id()))[0];
    if (task) return task.id();
    for (const group of cy.nodes("[kind = 'group']")) {
      const name = members(group).find(hit);
      if (name) return name;
    }
    return null;
  }
  async function reveal(name) {
    if (cy.getElementById(name).empty()) {
      const group = cy.nodes("[kind = 'group']").filter((g) => members(g).includes(name))[0];
      if (!group) return;
      expanded.add(group.id());
      await load(true);
    }
    const node = cy.getElementById(name);
    cy.nodes().removeClass("match");
    cy.elements(":selected").unselect();
    node.addClass("match").select();
    cy.animate({center: {eles: node}, zoom: Math.max(cy.zoom(), 0.8), duration: 200});
    showTask(name);
  }
  find.addEventListener("input", () => {
    if (!cy) return;
    const exact = firstTask(find.value, true);
    if (exact) { reveal(exact); return; }
    const found = highlight(find.value);
    if (found.length) cy.animate({fit: {eles: found, padding: 60}, duration: 200});
  });
  find.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !cy) return;
    event.preventDefault();
    const name = firstTask(find.value, false);
    if (name) reveal(name);
  });

  panel.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-units]");  // a map's units: another page, another phase
    if (link) { event.preventDefault(); unitsQuery = link.dataset.units; showTask(selected, true); return; }
    const button = event.target.closest("button[data-log]");
    if (!button) return;
    const target = document.getElementById("log");
    target.dataset.url = button.dataset.log;
    ferry.stream(button.dataset.log, target);
  });
  document.getElementById("fit").addEventListener("click", () => cy && fit());
  foldAll.addEventListener("click", () => { expanded.clear(); load(true); });
  load(true);
  ferry.live(box.dataset.live, () => load(false));
})();
