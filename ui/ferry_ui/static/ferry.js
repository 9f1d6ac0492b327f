// Live pages without a build step: server-sent events say "something changed", the page asks
// the server for the part that shows it.
const ferry = {
  live(url, onChange) {
    const source = new EventSource(url);
    let pending = null;
    source.addEventListener("change", () => {
      if (pending) return;                       // one refresh at a time, however many changes
      pending = setTimeout(async () => { try { await onChange(); } finally { pending = null; } }, 100);
    });
    return source;
  },

  liveList() {
    const form = document.getElementById("filters");
    const rows = document.getElementById("rows");
    let offset = new URLSearchParams(location.search).get("offset") || "0";
    const query = () => {
      const params = new URLSearchParams(new FormData(form));
      for (const [k, v] of [...params]) if (!v) params.delete(k);
      if (offset !== "0") params.set("offset", offset);
      return params;
    };
    const refresh = async () => {
      const params = query();
      const response = await fetch("/workflows?fragment=1&" + params);
      if (!response.ok) return;
      rows.innerHTML = await response.text();  // the server's fragment, every name in it escaped
      const select = form.elements.namespace;
      for (const name of JSON.parse(response.headers.get("X-Ferry-Namespaces") || "[]")) {
        if (![...select.options].some((o) => o.value === name)) select.add(new Option(name, name));
      }
      history.replaceState(null, "", "/workflows" + (params.toString() ? "?" + params : ""));
    };
    let typing = null;
    form.addEventListener("input", () => { offset = "0"; clearTimeout(typing); typing = setTimeout(refresh, 200); });
    form.addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
    rows.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-offset]");
      if (!link) return;
      event.preventDefault(); offset = link.dataset.offset; refresh();
    });
    ferry.live(rows.dataset.live, refresh);
  },

  async stream(url, target) {
    // A log, appended as it arrives (a running container's log keeps coming).
    target.hidden = false; target.textContent = "";
    if (ferry.reading) ferry.reading.abort();
    const controller = ferry.reading = new AbortController();
    const response = await fetch(url, {signal: controller.signal});
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      target.textContent += decoder.decode(value, {stream: true});
      target.scrollTop = target.scrollHeight;
    }
    if (!target.textContent) target.textContent = "(empty log)";
  },

  previews() {
    const pane = document.getElementById("preview");
    if (!pane) return;
    const show = async (url) => {
      const response = await fetch(url);
      const text = await response.text();
      if (response.ok) { pane.innerHTML = text; return; }  // the server's page, every name in it escaped
      const error = document.createElement("p");           // an error's text echoes the request: text only
      error.className = "error";
      error.textContent = `${response.status}: ${text}`;
      pane.replaceChildren(error);
    };
    if (pane.dataset.load) show(pane.dataset.load);
    document.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-preview]");
      if (!link) return;
      event.preventDefault(); show(link.dataset.preview);
    });
  },
};

// Each page's part starts from here, not from an inline script (the Content-Security-Policy runs none).
if (document.getElementById("filters")) ferry.liveList();
ferry.previews();
