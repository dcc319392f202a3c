// The AI Assistant's chat page. A file of ours, not an inline script: the page's
// Content-Security-Policy runs scripts from this origin only.
//
// Signing in exchanges an API key for the platform's HttpOnly session cookie
// (POST {app}/session); the key is sent once and never stored. The CSRF token the
// cookie's writes need is kept in this script's memory and read again with
// GET {app}/session after a reload. Replies are Markdown: marked turns them into
// HTML, DOMPurify keeps what is safe, and nothing that needs an inline style or a
// load from elsewhere survives, so a reply cannot break the page's policy.
//
// The theme, DOM helpers, API calls and signing in come from app.js (XynergyApp).
(function () {
  "use strict";

  var App = window.XynergyApp;
  var $ = App.$;
  var make = App.make;
  var show = App.show;
  var ApiError = App.ApiError;
  var Stale = App.Stale;
  var PAGE_SIZE = 20;
  var TITLE_CHARS = 80; // a new conversation's title: its first message's first line
  var ACTION_POLL_MS = 1000;
  var ACTION_POLLS_MAX = 300; // five minutes, then the user can reload to look again
  var FINISHED = { succeeded: true, failed: true, rejected: true };

  // ---- Markdown --------------------------------------------------------------
  var SANITISE = {
    USE_PROFILES: { html: true },
    // Styles would need 'unsafe-inline'; images and media would load from
    // elsewhere; forms and frames do not belong in a reply.
    FORBID_TAGS: ["style", "img", "picture", "video", "audio", "source", "iframe", "form",
      "input", "button", "textarea", "select", "object", "embed", "link", "meta", "base", "svg",
      "math"],
    FORBID_ATTR: ["style", "srcset", "id", "name", "class"],
    ALLOW_DATA_ATTR: false
  };

  function markdown(element, text) {
    var html = window.marked.parse(text, { async: false, gfm: true, breaks: true });
    element.innerHTML = window.DOMPurify.sanitize(html, SANITISE);
  }

  function escapeHtml(text) {
    return text
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  function setUpSanitiser() {
    // HTML typed into a message is shown as text, as written. It never reaches
    // the sanitiser as markup either: parsing an inline handler or style, even
    // to remove it, makes Chromium report a policy violation.
    window.marked.use({
      renderer: {
        html: function (token) {
          return escapeHtml(token.text);
        },
        // An image would load from wherever the reply points: a link instead.
        image: function (token) {
          var label = escapeHtml(token.text || token.href);
          return '<a href="' + escapeHtml(token.href) + '">' + label + "</a>";
        }
      }
    });
    // Links in a reply open elsewhere, without handing this page to the target.
    window.DOMPurify.addHook("afterSanitizeAttributes", function (node) {
      if (node.tagName === "A" && node.getAttribute("href")) {
        node.setAttribute("target", "_blank");
        node.setAttribute("rel", "noopener noreferrer");
      }
    });
  }

  // ---- helpers ----------------------------------------------------------------
  function pretty(value) {
    if (typeof value === "string") {
      try {
        return JSON.stringify(JSON.parse(value), null, 2);
      } catch (error) {
        return value;
      }
    }
    return JSON.stringify(value, null, 2);
  }

  // ---- state -----------------------------------------------------------------
  var state = {
    csrf: null,
    session: null,
    generation: 0, // one more at every sign-in and sign-out
    conversationId: null,
    conversationTitle: "",
    listCursor: null,
    search: "",
    olderCursor: null,
    sending: false,
    polls: {} // action id -> true while polled
  };

  // What app.js's fetchApi needs of this page; ``root`` is set at start.
  var api = {
    root: "",
    state: state,
    unreachable: "The server cannot be reached. Check your connection and try again.",
    describe: pretty,
    unauthorized: function () {
      signedOut("Your session has ended. Sign in again.");
      throw new ApiError(401, "Your session has ended. Sign in again.");
    }
  };

  function url(path) {
    return api.root + path;
  }

  // ---- HTTP ------------------------------------------------------------------
  async function request(method, path, body, accept) {
    return App.fetchApi(api, method, path, { body: body, accept: accept });
  }

  async function json(method, path, body) {
    var response = await request(method, path, body);
    return response.status === 204 ? null : response.json();
  }

  function showError(message) {
    $("chat-error").textContent = message || "";
  }

  function report(error) {
    if (error instanceof Stale) return;
    if (error instanceof ApiError) {
      if (error.status !== 401) showError(error.message);
      return;
    }
    showError("Something went wrong: " + error);
  }

  // ---- session ---------------------------------------------------------------
  function signedIn(session) {
    state.generation += 1;
    state.csrf = session.csrf_token;
    state.session = session;
    $("who").textContent = "Tenant " + session.tenant_id + " · key " + session.key_id;
    show($("who"), true);
    show($("sign-out"), true);
    show($("sign-in"), false);
    show($("workspace"), true);
    show($("loading"), false);
  }

  function signedOut(message) {
    state.generation += 1;
    state.csrf = null;
    state.session = null;
    state.conversationId = null;
    state.polls = {};
    $("conversation-list").replaceChildren();
    $("messages").replaceChildren();
    show($("who"), false);
    show($("sign-out"), false);
    show($("workspace"), false);
    show($("loading"), false);
    show($("sign-in"), true);
    $("sign-in-error").textContent = message || "";
    $("api-key").focus();
  }

  async function restoreSession() {
    await App.restoreSession(api, async function (session) {
      signedIn(session);
      await afterSignIn();
    }, signedOut);
  }

  async function afterSignIn() {
    // The address keeps the open conversation, so a reload comes back to it.
    var wanted = window.location.hash.replace(/^#/, "");
    newConversation();
    await loadConversations(true);
    if (/^[0-9a-f]{32}$/.test(wanted)) {
      await openConversation(wanted);
    }
  }

  async function signIn(event) {
    await App.signIn(api, event, async function (session) {
      signedIn(session);
      await afterSignIn();
      $("message").focus();
    }, report); // signed in; what failed after it shows in the workspace
  }

  async function signOut() {
    try {
      await request("DELETE", "/session");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) {
        report(error);
        return;
      }
      // 401: the session had already ended; the page still signs out below.
    }
    window.history.replaceState(null, "", window.location.pathname);
    signedOut("You are signed out.");
  }

  // ---- conversation list -------------------------------------------------------
  // Titles are plain text the API stores with &, < and > escaped (its stored-text
  // rule); the page shows them as typed, through textContent.
  function titleText(title) {
    return (title || "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function conversationItem(conversation) {
    var title = titleText(conversation.title) || "Untitled";
    var item = make("li");
    var button = make("button", "conversation-link", title);
    button.type = "button";
    button.dataset.id = conversation.id;
    if (conversation.id === state.conversationId) button.setAttribute("aria-current", "true");
    var when = new Date(conversation.last_activity_at).toLocaleString();
    button.setAttribute(
      "aria-label",
      title + ", " + conversation.message_count + " messages, " + when
    );
    button.addEventListener("click", function () {
      openConversation(conversation.id).catch(report);
    });
    item.appendChild(button);
    return item;
  }

  async function loadConversations(reset) {
    var query = "?limit=" + PAGE_SIZE;
    if (state.search) query += "&q=" + encodeURIComponent(state.search);
    if (!reset && state.listCursor) query += "&cursor=" + encodeURIComponent(state.listCursor);
    var page = await json("GET", "/api/conversations" + query);
    var list = $("conversation-list");
    if (reset) list.replaceChildren();
    page.items.forEach(function (conversation) {
      list.appendChild(conversationItem(conversation));
    });
    state.listCursor = page.next_cursor;
    show($("more-conversations"), Boolean(page.next_cursor));
    show($("no-conversations"), list.children.length === 0);
  }

  function markCurrent() {
    var buttons = $("conversation-list").querySelectorAll("button[data-id]");
    Array.prototype.forEach.call(buttons, function (button) {
      if (button.dataset.id === state.conversationId) {
        button.setAttribute("aria-current", "true");
      } else {
        button.removeAttribute("aria-current");
      }
    });
  }

  // ---- one conversation ----------------------------------------------------------
  function setTitle(stored) {
    var title = titleText(stored);
    state.conversationTitle = title;
    $("conversation-title").textContent = state.conversationId
      ? title || "Untitled"
      : "New conversation";
  }

  function newConversation() {
    state.conversationId = null;
    state.olderCursor = null;
    $("messages").replaceChildren();
    show($("older"), false);
    show($("empty"), true);
    show($("rename"), false);
    show($("delete"), false);
    show($("rename-form"), false);
    show($("delete-confirm"), false);
    showError("");
    setTitle("");
    markCurrent();
    if (window.location.hash) window.history.replaceState(null, "", window.location.pathname);
  }

  async function openConversation(id) {
    showError("");
    var detail = await json("GET", "/api/conversations/" + id + "?limit=" + PAGE_SIZE);
    state.conversationId = detail.id;
    state.olderCursor = detail.next_cursor;
    $("messages").replaceChildren();
    setTitle(detail.title);
    renderPage(detail.messages);
    show($("older"), Boolean(detail.next_cursor));
    show($("rename"), true);
    show($("delete"), true);
    show($("rename-form"), false);
    show($("delete-confirm"), false);
    markCurrent();
    window.history.replaceState(null, "", "#" + detail.id);
    scrollToEnd();
  }

  async function loadOlder() {
    if (!state.conversationId || !state.olderCursor) return;
    var detail = await json(
      "GET",
      "/api/conversations/" + state.conversationId + "?limit=" + PAGE_SIZE +
        "&cursor=" + encodeURIComponent(state.olderCursor)
    );
    state.olderCursor = detail.next_cursor;
    renderPage(detail.messages, true);
    show($("older"), Boolean(detail.next_cursor));
  }

  // A page comes newest first; the transcript reads oldest first. A turn is stored
  // as several assistant rows (one per round of tool calls, then the reply): their
  // usage adds up on the turn's last one, as the streamed turn's total does.
  function renderPage(messages, older) {
    var list = $("messages");
    var fragment = document.createDocumentFragment();
    var oldestFirst = messages.slice().reverse();
    var total = null;
    oldestFirst.forEach(function (message, index) {
      if (message.role === "user") total = null;
      if (message.role === "assistant") {
        total = addUsage(total, message.usage);
        var next = oldestFirst[index + 1];
        var last = !next || next.role === "user";
        message = Object.assign({}, message, { usage: last ? total : null });
      }
      var element = renderStored(message);
      if (element) fragment.appendChild(element);
    });
    if (older) {
      list.insertBefore(fragment, list.firstChild);
    } else {
      list.appendChild(fragment);
    }
    show($("empty"), list.children.length === 0);
  }

  function renderStored(message) {
    if (message.role === "user") return userMessage(message.content);
    if (message.role === "assistant") {
      if (!message.content) return null; // a round of tool calls: its tool rows show it
      var element = assistantMessage();
      markdown(element.querySelector(".body"), message.content);
      if (message.status === "failed") element.classList.add("failed");
      if (message.usage) showUsage(element, message.usage, message.model);
      return element;
    }
    if (message.role === "tool") {
      var call = (message.tool_calls || [])[0] || {};
      var fn = call["function"] || {};
      var element2 = toolMessage(fn.name || "tool", fn.arguments);
      setToolResult(element2, call.outcome, message.content);
      if (call.action) {
        var card = actionCard(call.action);
        element2.appendChild(card);
        if (!FINISHED[call.action.status] && call.action.status !== "proposed") {
          pollAction(call.action.id, card);
        } else if (call.action.status === "proposed") {
          refreshAction(call.action.id, card); // it may have been decided elsewhere
        }
      }
      return element2;
    }
    return null; // summaries stand in for older turns in the model's context only
  }

  function userMessage(text) {
    var item = make("li", "message user");
    item.appendChild(make("p", "role", "You"));
    var body = make("div", "body");
    markdown(body, text);
    item.appendChild(body);
    return item;
  }

  function assistantMessage() {
    var item = make("li", "message assistant");
    item.appendChild(make("p", "role", "Assistant"));
    item.appendChild(make("div", "body"));
    return item;
  }

  // The API's exact decimal ("0E-9", "0.000120000") as a person reads dollars.
  function dollars(text) {
    var value = Number(text);
    if (!isFinite(value)) return "$" + text;
    if (value === 0) return "$0";
    if (value < 0.01) return "$" + Number(value.toPrecision(2));
    return "$" + value.toFixed(4).replace(/0{1,2}$/, "");
  }

  function addUsage(total, usage) {
    if (!usage) return total;
    return {
      input_tokens: (total ? total.input_tokens : 0) + usage.input_tokens,
      output_tokens: (total ? total.output_tokens : 0) + usage.output_tokens,
      cost_usd: String((total ? Number(total.cost_usd) : 0) + Number(usage.cost_usd))
    };
  }

  function showUsage(element, usage, model) {
    var cost = dollars(usage.cost_usd);
    var parts = [usage.input_tokens + " in", usage.output_tokens + " out", cost];
    if (model) parts.push(model);
    var line = element.querySelector(".usage") || make("p", "usage");
    line.textContent = parts.join(" · ");
    line.setAttribute("aria-label", "This turn: " + usage.input_tokens + " input tokens, " +
      usage.output_tokens + " output tokens, cost " + cost + (model ? ", model " + model : ""));
    element.appendChild(line);
  }

  function toolMessage(name, args) {
    var item = make("li", "message tool");
    var details = make("details", "tool-call");
    var summary = make("summary", null, "Tool: " + name);
    details.appendChild(summary);
    details.appendChild(make("p", "label", "Inputs"));
    details.appendChild(make("pre", "inputs", pretty(args === undefined ? {} : args)));
    details.appendChild(make("p", "label result-label", "Result"));
    details.appendChild(make("pre", "result", "Running…"));
    item.appendChild(details);
    return item;
  }

  function setToolResult(element, outcome, content) {
    var label = element.querySelector(".result-label");
    label.textContent = outcome ? "Result (" + outcome + ")" : "Result";
    element.querySelector(".result").textContent = pretty(content || "");
  }

  // ---- actions ------------------------------------------------------------------
  function actionCard(action) {
    var card = make("div", "action");
    card.setAttribute("role", "group");
    card.setAttribute("aria-label", "Proposed action " + action.tool);
    card.dataset.actionId = action.id;
    card.appendChild(make("p", "action-title", "Proposed: " + action.tool));
    card.appendChild(make("pre", "inputs", pretty(action.inputs)));
    if (action.estimated_cost_usd) {
      card.appendChild(make("p", "note", "Estimated cost: " + dollars(action.estimated_cost_usd)));
    }
    var status = make("p", "action-status");
    status.setAttribute("aria-live", "polite");
    card.appendChild(status);
    var buttons = make("div", "action-buttons");
    var confirm = make("button", "primary confirm", "Confirm");
    confirm.type = "button";
    confirm.setAttribute("aria-label", "Confirm " + action.tool);
    var reject = make("button", "quiet reject", "Reject");
    reject.type = "button";
    reject.setAttribute("aria-label", "Reject " + action.tool);
    confirm.addEventListener("click", function () {
      decide(action.id, card, "confirm");
    });
    reject.addEventListener("click", function () {
      decide(action.id, card, "reject");
    });
    buttons.appendChild(confirm);
    buttons.appendChild(reject);
    card.appendChild(buttons);
    updateAction(card, action);
    return card;
  }

  function updateAction(card, action) {
    var status = card.querySelector(".action-status");
    var text;
    if (action.status === "proposed") {
      text = "Waiting for your decision.";
    } else if (action.status === "rejected") {
      text = "Rejected: it will not run.";
    } else if (action.status === "running") {
      text = "Running" + (action.workflow_status ? " (" + action.workflow_status + ")" : "") + "…";
    } else if (action.status === "succeeded") {
      // The run's own summary says what it did; otherwise name what it made.
      text = "Done. " + (action.result_summary ||
        (action.campaign_id ? "Campaign " + action.campaign_id + "." : "") +
        (action.content_id ? "Content " + action.content_id + "." : ""));
    } else {
      text = "Failed" + (action.detail ? ": " + action.detail : ".");
    }
    status.textContent = text;
    card.dataset.status = action.status;
    if (action.campaign_id) card.dataset.campaignId = action.campaign_id;
    if (action.content_id) card.dataset.contentId = action.content_id;
    show(card.querySelector(".action-buttons"), action.status === "proposed");
  }

  function actionPath(id, verb) {
    return "/api/conversations/" + state.conversationId + "/actions/" + id + (verb ? "/" + verb : "");
  }

  async function decide(id, card, verb) {
    var buttons = card.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (button) {
      button.disabled = true;
    });
    showError("");
    try {
      var action = await json("POST", actionPath(id, verb));
      updateAction(card, action);
      if (!FINISHED[action.status]) pollAction(id, card);
    } catch (error) {
      report(error);
    } finally {
      Array.prototype.forEach.call(buttons, function (button) {
        button.disabled = false;
      });
    }
  }

  async function refreshAction(id, card) {
    try {
      updateAction(card, await json("GET", actionPath(id)));
    } catch (error) {
      report(error);
    }
  }

  async function pollAction(id, card) {
    if (state.polls[id]) return;
    state.polls[id] = true;
    var conversation = state.conversationId;
    try {
      for (var attempt = 0; attempt < ACTION_POLLS_MAX; attempt += 1) {
        await new Promise(function (resolve) {
          window.setTimeout(resolve, ACTION_POLL_MS);
        });
        // Stop when the user moved on or signed out: the card is gone.
        if (!state.polls[id] || state.conversationId !== conversation || !card.isConnected) return;
        var action = await json("GET", actionPath(id));
        updateAction(card, action);
        if (FINISHED[action.status]) return;
      }
      card.querySelector(".action-status").textContent =
        "Still running. Reload the page later to see how it ended.";
    } catch (error) {
      report(error);
    } finally {
      delete state.polls[id];
    }
  }

  // ---- sending and streaming ------------------------------------------------------
  function scrollToEnd() {
    var transcript = $("transcript");
    transcript.scrollTop = transcript.scrollHeight;
  }

  function titleFrom(text) {
    // Short enough for the list, and never over the server's bound.
    var limit = Math.min(Number($("chat").dataset.titleMax) || TITLE_CHARS, TITLE_CHARS);
    // The first line, without the Markdown that starts it (a heading, a quote, a bullet).
    var line = text.trim().split("\n")[0].replace(/^[#>*+\-\s]+/, "").trim() || "Conversation";
    return line.length > limit ? line.slice(0, limit - 1) + "…" : line;
  }

  async function ensureConversation(text) {
    if (state.conversationId) return;
    var created = await json("POST", "/api/conversations", { title: titleFrom(text) });
    state.conversationId = created.id;
    setTitle(created.title);
    show($("rename"), true);
    show($("delete"), true);
    window.history.replaceState(null, "", "#" + created.id);
    await loadConversations(true);
    markCurrent();
  }

  // The reply as it streams: a text block for the model's words, a tool block per
  // call; a text delta after a tool call starts a new text block.
  function Reply(list) {
    this.list = list;
    this.conversation = state.conversationId;
    this.current = null;
    this.text = "";
    this.tools = {};
    this.last = null;
  }

  // The user opened another conversation meanwhile: the server still stores this
  // reply, but the transcript on screen is not its own.
  Reply.prototype.away = function () {
    return state.conversationId !== this.conversation;
  };

  Reply.prototype.delta = function (content) {
    if (!content || this.away()) return;
    if (!this.current) {
      this.current = assistantMessage();
      var body = this.current.querySelector(".body");
      body.setAttribute("aria-live", "polite");
      body.setAttribute("aria-busy", "true");
      this.list.appendChild(this.current);
      this.text = "";
      this.last = this.current;
    }
    this.text += content;
    markdown(this.current.querySelector(".body"), this.text);
    scrollToEnd();
  };

  Reply.prototype.close = function () {
    if (this.current) this.current.querySelector(".body").setAttribute("aria-busy", "false");
    this.current = null;
  };

  Reply.prototype.tool = function (event) {
    this.close();
    if (this.away()) return;
    if (event.type === "tool_call") {
      var element = toolMessage(event.name, event.arguments);
      this.tools[event.tool_call_id] = element;
      this.list.appendChild(element);
    } else if (event.type === "tool_result") {
      var found = this.tools[event.tool_call_id];
      if (found) setToolResult(found, event.outcome, event.content);
    } else if (event.type === "action_proposed") {
      var host = this.list.lastElementChild;
      if (host) host.appendChild(actionCard(event.action));
    }
    scrollToEnd();
  };

  Reply.prototype.finish = function (turn) {
    this.close();
    if (this.away()) return;
    var target = this.last;
    if (!target) {
      target = assistantMessage();
      this.list.appendChild(target);
    }
    if (turn.reply && turn.reply.status === "failed") {
      target.classList.add("failed");
      if (!this.text) markdown(target.querySelector(".body"), turn.reply.content);
    }
    showUsage(target, turn.usage, turn.reply && turn.reply.model);
  };

  // Server-sent events from a fetch body (EventSource cannot POST).
  async function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
      var end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        var block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        var data = block
          .split("\n")
          .filter(function (line) {
            return line.indexOf("data:") === 0;
          })
          .map(function (line) {
            return line.slice(5).replace(/^ /, "");
          })
          .join("\n");
        if (!data) continue; // a keep-alive comment
        if (data === "[DONE]") return true;
        onEvent(JSON.parse(data));
      }
    }
    return false;
  }

  async function send(event) {
    if (event) event.preventDefault();
    var box = $("message");
    var text = box.value;
    if (!text.trim() || state.sending) return;
    state.sending = true;
    $("send").disabled = true;
    $("composer").setAttribute("aria-busy", "true");
    showError("");
    var mine = null;
    try {
      await ensureConversation(text);
      var list = $("messages");
      mine = list.appendChild(userMessage(text));
      show($("empty"), false);
      box.value = "";
      scrollToEnd();
      var response = await request(
        "POST",
        "/api/conversations/" + state.conversationId + "/messages",
        { message: text, stream: true },
        "text/event-stream"
      );
      mine = null; // accepted: the server keeps it from here on
      var reply = new Reply(list);
      var failed = null;
      var done = await readEvents(response, function (data) {
        if (data.object === "chat.completion.chunk") {
          var delta = (data.choices && data.choices[0] && data.choices[0].delta) || {};
          reply.delta(delta.content);
        } else if (data.object === "assistant.tool") {
          reply.tool(data);
        } else if (data.object === "assistant.turn") {
          reply.finish(data);
        } else if (data.error) {
          failed = data.detail || data.error;
        }
      });
      reply.close();
      if (failed) {
        showError(failed);
      } else if (!done) {
        showError("The reply was cut off. Reload the conversation to see what was stored.");
      }
      await loadConversations(true); // its order and counts changed
    } catch (error) {
      // Refused before the server took it: back in the box, gone from the transcript.
      if (mine) mine.remove();
      if (box.value === "") box.value = text;
      report(error);
    } finally {
      state.sending = false;
      $("send").disabled = false;
      $("composer").setAttribute("aria-busy", "false");
    }
  }

  function onKey(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  }

  // ---- rename and delete -------------------------------------------------------
  function startRename() {
    show($("delete-confirm"), false);
    show($("rename-form"), true);
    var input = $("rename-input");
    input.value = state.conversationTitle;
    input.focus();
    input.select();
  }

  async function rename(event) {
    event.preventDefault();
    var title = $("rename-input").value.trim();
    if (!title) return;
    try {
      var updated = await json("PATCH", "/api/conversations/" + state.conversationId, {
        title: title
      });
      setTitle(updated.title);
      show($("rename-form"), false);
      $("rename").focus();
      await loadConversations(true);
    } catch (error) {
      report(error);
    }
  }

  async function remove() {
    try {
      await json("DELETE", "/api/conversations/" + state.conversationId);
      newConversation();
      await loadConversations(true);
      $("new-conversation").focus();
    } catch (error) {
      report(error);
    }
  }

  // ---- start ---------------------------------------------------------------------
  function start() {
    var main = $("chat");
    api.root = main.dataset.appRoot || "";
    setUpSanitiser();
    App.themeToggle($("theme-toggle"), { ariaLabel: true });
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", function () {
      signOut().catch(report);
    });
    $("new-conversation").addEventListener("click", function () {
      newConversation();
      $("message").focus();
    });
    $("search-form").addEventListener("submit", function (event) {
      event.preventDefault();
    });
    var searchTimer = null;
    $("search").addEventListener("input", function () {
      window.clearTimeout(searchTimer);
      searchTimer = window.setTimeout(function () {
        state.search = $("search").value.trim();
        loadConversations(true).catch(report);
      }, 250);
    });
    $("more-conversations").addEventListener("click", function () {
      loadConversations(false).catch(report);
    });
    $("older").addEventListener("click", function () {
      loadOlder().catch(report);
    });
    $("composer").addEventListener("submit", send);
    $("message").addEventListener("keydown", onKey);
    $("rename").addEventListener("click", startRename);
    $("rename-form").addEventListener("submit", rename);
    $("rename-cancel").addEventListener("click", function () {
      show($("rename-form"), false);
      $("rename").focus();
    });
    $("delete").addEventListener("click", function () {
      show($("rename-form"), false);
      show($("delete-confirm"), true);
      $("delete-no").focus();
    });
    $("delete-no").addEventListener("click", function () {
      show($("delete-confirm"), false);
      $("delete").focus();
    });
    $("delete-yes").addEventListener("click", function () {
      show($("delete-confirm"), false);
      remove();
    });
    restoreSession().catch(report);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
