// Asks for the graph as soon as its pane is parsed, so the server builds it while the browser
// loads and parses Cytoscape (dag.js takes the answer). A file, not an inline script: the pages'
// Content-Security-Policy runs no inline script.
window.ferryGraphRequest = fetch(document.getElementById("dag").dataset.graph);
