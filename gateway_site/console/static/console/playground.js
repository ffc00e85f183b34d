// The playground's streamed answer. With "Stream the answer" ticked, the form is sent with fetch
// to its stream URL, which answers newline-delimited JSON as the gateway's stream arrives
// (tenants/playground_views.py): the text grows token by token. Stop aborts the fetch; the
// server then ends the gateway request, which records the stream as ended by the client, and the
// page keeps what arrived as the answer of that turn. Without JavaScript, or without streaming,
// the form posts as before (htmx, or a full page).
(() => {
  const form = document.querySelector("form[data-playground]");
  if (!form) return;
  const send = form.querySelector("button[type=submit]");
  const stop = form.querySelector("[data-playground-stop]");
  let controller = null;
  let finished = false;

  const side = (n) => document.querySelector(`#answer [data-side="${n}"]`);

  function setBusy(busy) {
    send.disabled = busy;
    stop.hidden = !busy;
    form.setAttribute("aria-busy", String(busy));
  }

  function replaceAnswer(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const fresh = template.content.firstElementChild;
    document.getElementById("answer").replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
  }

  function showError(target, text) {
    const message = document.createElement("p");
    message.className = "message message--error";
    message.setAttribute("role", "alert");
    message.textContent = text;
    target.prepend(message);
  }

  function apply(event) {
    if (event.type === "done") finished = true;
    if (event.type === "begin" || event.type === "done") {
      replaceAnswer(event.html);
      return;
    }
    const card = side(event.side);
    if (!card) return;
    if (event.type === "delta") {
      card.querySelector("[data-testid=answer]").append(event.text);
    } else if (event.type === "request") {
      const link = document.createElement("a");
      link.href = event.url;
      link.dataset.testid = "request-link";
      const code = document.createElement("code");
      code.textContent = event.request_id;
      link.append(code);
      card.querySelector("[data-testid=request-slot]").replaceChildren("Request ", link);
    }
  }

  // What arrived before Stop is the answer of that turn: the next message carries it.
  function keepStopped() {
    document.querySelectorAll("#answer [data-side]").forEach((card) => {
      const n = Number(card.dataset.side);
      const field = form.querySelector(`input[name=history_${n === 0 ? "a" : "b"}]`);
      const text = card.querySelector("[data-testid=answer]").textContent;
      if (field && text) {
        const turns = JSON.parse(field.dataset.turns);
        field.value = JSON.stringify([...turns, { role: "assistant", content: text }]);
      }
      card.removeAttribute("aria-busy");
      const status = card.querySelector("[data-testid=reply-status]");
      if (status) {
        status.textContent = text
          ? "Stopped. The text above is what arrived; the request is recorded as ended by the client."
          : "Stopped before any text arrived; the request is recorded as ended by the client.";
      }
    });
  }

  async function stream() {
    controller = new AbortController();
    finished = false;
    setBusy(true);
    try {
      const response = await fetch(form.dataset.streamUrl, {
        method: "POST",
        body: new FormData(form),
        signal: controller.signal,
        headers: { Accept: "application/x-ndjson" },
      });
      if (!response.ok) {
        showError(document.getElementById("answer"), `The console answered ${response.status}.`);
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        let end;
        while ((end = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, end);
          buffered = buffered.slice(end + 1);
          if (line) apply(JSON.parse(line));
        }
      }
      if (!finished) showError(document.getElementById("answer"), "The answer ended early; My requests shows what the gateway recorded.");
    } catch (error) {
      if (error.name === "AbortError") keepStopped();
      else showError(document.getElementById("answer"), `The answer stopped: ${error.message}`);
    } finally {
      controller = null;
      setBusy(false);
    }
  }

  // Capture phase on the document: runs before htmx's own submit handler on the form.
  document.addEventListener("submit", (event) => {
    if (event.target !== form || !form.elements.stream.checked) return;
    event.preventDefault();
    event.stopPropagation();
    if (!controller) stream();
  }, true);

  stop.addEventListener("click", () => { if (controller) controller.abort(); });
})();
