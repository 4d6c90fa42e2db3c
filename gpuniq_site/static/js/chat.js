/* Web chat: send a turn with fetch(), read the SSE reply with a stream reader and show the text as
   it arrives (as plain text: textContent, never HTML); when the stream ends, swap in the server's
   rendered, sanitised Markdown of the stored turn. Stop asks the server to end the reply: it cancels
   the upstream request, bills what was produced and keeps the turn, marked stopped. Image turns come
   back as the transcript's HTML. */
(function () {
  "use strict";
  var form = document.querySelector("[data-chat-composer]");
  if (!form) return;
  var transcript = document.getElementById("transcript");
  var textarea = form.querySelector("textarea[name=message]");
  var select = form.querySelector("select[name=model]");
  var price = form.querySelector("[data-model-price]");
  var status = form.querySelector("[data-status]");
  var sendButton = form.querySelector("[data-send]");
  var stopButton = form.querySelector("[data-stop]");
  var controller = null, requestId = null, stopping = null;

  function showPrice() {
    var option = select.selectedOptions[0];
    price.textContent = option ? option.getAttribute("data-price") : "";
    textarea.placeholder = option && option.getAttribute("data-kind") === "image"
      ? "Describe an image…  (Enter to generate)" : "Message " + (option ? option.textContent.trim() : "") + "…  (Enter to send, Shift+Enter for a new line)";
  }
  select.addEventListener("change", showPrice);
  showPrice();

  function node(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text) el.textContent = text;
    return el;
  }
  function scrollDown() { transcript.scrollTop = transcript.scrollHeight; }
  function busy(on) {
    sendButton.hidden = on; stopButton.hidden = !on;
    status.textContent = on ? "Generating…" : "";
    if (!on) textarea.focus(); else stopButton.focus();
  }
  function swapHtml(target, html) {  /* server-rendered partials only */
    target.innerHTML = html;
    if (window.htmx) window.htmx.process(target);
  }
  function refresh() {
    var lists = document.getElementById("chat-list");
    var calls = [fetch(transcript.getAttribute("data-transcript-url"), { headers: { "HX-Request": "true" } })
      .then(function (r) { return r.text(); }).then(function (html) { swapHtml(transcript, html); scrollDown(); })];
    if (lists) {
      calls.push(fetch(transcript.getAttribute("data-list-url"), { headers: { "HX-Request": "true" } })
        .then(function (r) { return r.text(); }).then(function (html) { swapHtml(lists, html); }));
    }
    return Promise.all(calls);
  }

  /* One pending exchange: the user's bubble and the reply being written. */
  function pendingTurn(text) {
    var empty = transcript.querySelector("[data-empty]");
    if (empty) empty.remove();
    var user = node("div", "msg msg-user");
    user.appendChild(node("div", "bubble", text));
    var reply = node("div", "msg msg-assistant is-streaming");
    reply.appendChild(node("span", "bot-mark", "G")).setAttribute("aria-hidden", "true");
    var body = reply.appendChild(node("div", "msg-body"));
    var out = body.appendChild(node("div", "md md-stream"));
    out.appendChild(node("span", "typing", "")).setAttribute("aria-label", "Waiting for the reply");
    var meta = body.appendChild(node("div", "msg-meta"));
    transcript.appendChild(user); transcript.appendChild(reply); scrollDown();
    return { reply: reply, out: out, meta: meta, text: "" };
  }

  function showError(turn, response, fallback) {
    turn.reply.classList.remove("is-streaming");
    var slot = node("div", "");
    turn.out.parentNode.insertBefore(slot, turn.meta);
    if (!response) { slot.appendChild(node("div", "callout callout-warn chat-error", fallback)); return Promise.resolve(); }
    return response.text().then(function (body) {
      if ((response.headers.get("content-type") || "").indexOf("text/html") === 0) swapHtml(slot, body);
      else slot.appendChild(node("div", "callout callout-warn chat-error", body || fallback));
    });
  }

  // The page-side mirror of billing.money.format_usd for costs that arrive as numbers in a stream:
  // exact to 1e-8 USD, trailing zeros dropped, at least cents, never an exponent ("$0.0000012").
  function usd(value) {
    var text = Math.abs(Number(value)).toFixed(8).replace(/0+$/, "");
    var parts = text.split(".");
    return (Number(value) < 0 ? "-$" : "$") + parts[0] + "." + (parts[1] + "00").slice(0, Math.max(2, parts[1].length));
  }

  function handleEvent(turn, event) {
    var line = event.split("\n").filter(function (l) { return l.indexOf("data: ") === 0; }).join("");
    if (!line || line === "data: [DONE]") return null;
    var obj;
    try { obj = JSON.parse(line.slice(6)); } catch (e) { return null; }
    if (obj.error) return obj.error.message || "The model provider failed.";
    (obj.choices || []).forEach(function (choice) {
      var piece = choice.delta && choice.delta.content;
      if (typeof piece === "string" && piece) {
        if (!turn.text) turn.out.textContent = "";
        turn.text += piece;
        turn.out.textContent = turn.text;
      }
    });
    if (obj.usage && obj.usage.cost_usd !== undefined) turn.meta.textContent = usd(obj.usage.cost_usd);
    scrollDown();
    return null;
  }

  async function readStream(turn, response) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "", failure = null;
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      var events = buffer.split("\n\n");
      buffer = events.pop();
      events.forEach(function (event) { failure = handleEvent(turn, event) || failure; });
    }
    return failure;
  }

  async function send() {
    var text = textarea.value.trim();
    if (!text || controller) return;
    var data = new FormData(form);
    textarea.value = "";
    var turn = pendingTurn(text);
    controller = new AbortController();
    busy(true);
    try {
      var response = await fetch(form.action, { method: "POST", body: data, signal: controller.signal,
                                                headers: { "HX-Request": "true" } });
      requestId = response.headers.get("x-request-id");
      var type = response.headers.get("content-type") || "";
      if (!response.ok) await showError(turn, response, "The message could not be sent.");
      else if (type.indexOf("text/event-stream") !== 0) { swapHtml(transcript, await response.text()); scrollDown(); }
      else {
        var failure = await readStream(turn, response);
        if (failure) await showError(turn, null, failure);
        else await refresh();
      }
    } catch (error) {
      turn.reply.classList.remove("is-streaming");
      if (error.name === "AbortError") {
        turn.reply.classList.add("is-stopped");
        turn.meta.textContent = "Stopped. You pay only for what was produced.";
      } else {
        await showError(turn, null, "The connection was lost. Check the chat history before retrying.");
      }
    } finally {
      controller = null; requestId = null; stopping = null;
      busy(false);
    }
  }

  /* Stop: ask the server to end the reply (it bills what was produced, closes the hold and keeps
     the turn, marked stopped); the stream then ends by itself. Abort only if that does not work. */
  function stop() {
    if (!controller || stopping) return;
    if (!requestId) { controller.abort(); return; }
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    data.append("request_id", requestId);
    var current = controller;
    status.textContent = "Stopping…";
    stopping = fetch(form.action.replace(/send$/, "stop"), { method: "POST", body: data, headers: { "HX-Request": "true" } })
      .then(function (r) { if (!r.ok) current.abort(); }, function () { current.abort(); });
    setTimeout(function () { if (controller === current) current.abort(); }, 8000);
  }

  /* "View code": the current settings as curl, Python (OpenAI SDK) and JavaScript (OpenAI SDK). */
  var code = form.querySelector("[data-view-code]");
  function settings() {
    var value = function (name) { var el = form.querySelector("[name=" + name + "]"); return el ? el.value.trim() : ""; };
    var body = { model: select.value, messages: [] };
    if (value("system_prompt")) body.messages.push({ role: "system", content: value("system_prompt") });
    body.messages.push({ role: "user", content: textarea.value.trim() || "Hello!" });
    if (value("temperature")) body.temperature = Number(value("temperature"));
    if (value("max_tokens")) body.max_tokens = parseInt(value("max_tokens"), 10);
    if (value("reasoning_effort")) body.reasoning_effort = value("reasoning_effort");
    return body;
  }
  function pyValue(v) { return JSON.stringify(v, null, 4).replace(/\btrue\b/g, "True").replace(/\bfalse\b/g, "False").replace(/\bnull\b/g, "None"); }
  function showCode() {
    if (!code) return;
    var base = code.getAttribute("data-base-url").replace(/\/$/, "") + "/v1/openai";
    var body = settings(), json = JSON.stringify(body, null, 2);
    var args = Object.keys(body).map(function (k) { return "    " + k + "=" + pyValue(body[k]).replace(/\n/g, "\n    ") + ","; }).join("\n");
    code.querySelector("[data-code=curl]").textContent = "curl " + base + "/chat/completions \\\n  -H \"Authorization: Bearer $GPUNIQ_API_KEY\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '" + json.replace(/'/g, "'\\''") + "'";
    code.querySelector("[data-code=python]").textContent = "import os\nfrom openai import OpenAI\n\nclient = OpenAI(api_key=os.environ[\"GPUNIQ_API_KEY\"], base_url=\"" + base + "\")\nreply = client.chat.completions.create(\n" + args + "\n)\nprint(reply.choices[0].message.content)";
    code.querySelector("[data-code=js]").textContent = "import OpenAI from \"openai\";\n\nconst client = new OpenAI({ apiKey: process.env.GPUNIQ_API_KEY, baseURL: \"" + base + "\" });\nconst reply = await client.chat.completions.create(" + json.replace(/\n/g, "\n") + ");\nconsole.log(reply.choices[0].message.content);";
  }
  form.addEventListener("input", showCode);
  form.addEventListener("change", showCode);
  showCode();

  form.addEventListener("submit", function (event) {
    if (!window.fetch || !window.ReadableStream) return;  /* an old browser posts the form: the page answers */
    event.preventDefault(); send();
  });
  stopButton.addEventListener("click", stop);
  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); send(); }
    if (event.key === "Escape" && controller) stop();
  });
  textarea.addEventListener("input", function () {
    textarea.style.height = "auto";
    textarea.style.height = Math.min(textarea.scrollHeight, 240) + "px";
  });
  scrollDown();
})();
