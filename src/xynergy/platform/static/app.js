// What the signed-in pages (the AI Assistant's chat, the Platform Dashboard) share:
// the theme, small DOM helpers, the API fetch with its CSRF header and error shape,
// and signing in and out against {app}/session. A file of ours, not an inline
// script: the pages' Content-Security-Policy runs scripts from this origin only.
// Each page loads it, not deferred, before its own script, so the stored theme is
// applied before the first paint; it exposes one name, window.XynergyApp.
(function () {
  "use strict";

  var THEME_KEY = "xynergy.theme"; // a display preference, nothing secret
  var THEMES = ["system", "light", "dark"];

  // ---- theme: applied before the first paint -------------------------------
  function storedTheme() {
    try {
      var value = window.localStorage.getItem(THEME_KEY);
      return THEMES.indexOf(value) >= 0 ? value : "system";
    } catch (error) {
      return "system"; // storage refused (private mode): the system's theme
    }
  }

  function applyTheme(theme) {
    if (theme === "system") {
      delete document.documentElement.dataset.theme;
    } else {
      document.documentElement.dataset.theme = theme;
    }
  }

  applyTheme(storedTheme());

  // The theme button: system, light, dark in turn. ``options.ariaLabel`` also names
  // the button's action; ``options.onChange`` runs after each change.
  function themeToggle(button, options) {
    options = options || {};
    function label(theme) {
      button.textContent = "Theme: " + theme;
      if (options.ariaLabel) button.setAttribute("aria-label", "Theme: " + theme + ". Change theme");
    }
    label(storedTheme());
    button.addEventListener("click", function () {
      var theme = THEMES[(THEMES.indexOf(storedTheme()) + 1) % THEMES.length];
      try {
        window.localStorage.setItem(THEME_KEY, theme);
      } catch (error) {
        // not remembered, still applied
      }
      applyTheme(theme);
      label(theme);
      if (options.onChange) options.onChange(theme);
    });
  }

  // ---- small DOM helpers -----------------------------------------------------
  function $(id) {
    return document.getElementById(id);
  }

  function make(tag, className, text) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = text;
    return element;
  }

  function show(element, visible) {
    element.hidden = !visible;
  }

  // ---- HTTP ------------------------------------------------------------------
  function ApiError(status, detail) {
    this.status = status;
    this.message = detail;
  }

  // An answer to a request made before the user signed in or out again: it
  // belongs to a page state that is gone, so nothing shows it.
  function Stale() {
    this.message = "stale";
  }

  // The API's error shape ({"error", "detail", "request_id"}) as an ApiError;
  // ``describe`` writes a detail that is not a string (JSON.stringify by default).
  async function errorOf(response, describe) {
    var detail = "The server answered " + response.status + ".";
    try {
      var body = await response.json();
      if (body && body.detail) {
        detail = typeof body.detail === "string" ? body.detail : (describe || JSON.stringify)(body.detail);
      }
    } catch (error) {
      // not JSON: the status says enough
    }
    return new ApiError(response.status, detail);
  }

  // A "?name=value&..." string of the params that have a value (none: "").
  function query(params) {
    var parts = [];
    Object.keys(params || {}).forEach(function (name) {
      var value = params[name];
      if (value !== null && value !== undefined && value !== "") {
        parts.push(encodeURIComponent(name) + "=" + encodeURIComponent(value));
      }
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  // One call to the page's app. ``api`` is the page's: ``root`` (the app's path),
  // ``state`` (``generation``, one more at every sign-in and sign-out, and ``csrf``),
  // ``unreachable`` (what a network failure says), ``describe`` (see errorOf) and
  // ``unauthorized(response)``, which must throw. ``options``: ``body`` (sent as
  // JSON), ``accept``, ``query`` (a "?..." string), ``actAs`` (a tenant id).
  // Resolves to the response when it is ok; else throws ApiError or Stale.
  async function fetchApi(api, method, path, options) {
    options = options || {};
    var generation = api.state.generation;
    var headers = { Accept: options.accept || "application/json" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && api.state.csrf) headers["X-CSRF-Token"] = api.state.csrf;
    if (options.actAs) headers["X-Xynergy-Tenant"] = options.actAs;
    var response;
    try {
      response = await fetch(api.root + path + (options.query || ""), {
        method: method,
        headers: headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        credentials: "same-origin",
        cache: "no-store"
      });
    } catch (error) {
      throw new ApiError(0, api.unreachable);
    }
    if (generation !== api.state.generation) {
      await response.text(); // read to the end, so no reload reports it cut short
      throw new Stale();
    }
    if (response.status === 401 && path !== "/session") await api.unauthorized(response);
    if (!response.ok) throw await errorOf(response, api.describe);
    return response;
  }

  // ---- session ---------------------------------------------------------------
  // After a reload: GET {app}/session gives the session (and its CSRF token) again.
  async function restoreSession(api, signedIn, signedOut) {
    var response;
    try {
      response = await fetch(api.root + "/session", {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store"
      });
    } catch (error) {
      signedOut("The server cannot be reached. Reload the page to try again.");
      return;
    }
    if (response.status === 401) {
      // Read to the end: a body left unread is aborted, and reported, at the next reload.
      await response.text();
      signedOut("");
      return;
    }
    if (!response.ok) {
      signedOut((await errorOf(response, api.describe)).message);
      return;
    }
    await signedIn(await response.json());
  }

  // The sign-in form's submit: the key is exchanged once (POST {app}/session) for
  // the HttpOnly cookie and never stored. ``signedIn(session)`` sets the page up;
  // ``failed(error)`` hears an ApiError or Stale thrown after the exchange.
  async function signIn(api, event, signedIn, failed) {
    event.preventDefault();
    var input = $("api-key");
    var key = input.value.trim();
    $("sign-in-error").textContent = "";
    if (!key) {
      $("sign-in-error").textContent = "Enter an API key.";
      input.focus();
      return;
    }
    $("sign-in-button").disabled = true;
    try {
      var response = await fetch(api.root + "/session", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ api_key: key }),
        credentials: "same-origin",
        cache: "no-store"
      });
      key = null;
      input.value = ""; // the key leaves the page as soon as it has been sent
      if (!response.ok) {
        $("sign-in-error").textContent = (await errorOf(response, api.describe)).message;
        input.focus();
        return;
      }
      await signedIn(await response.json());
    } catch (error) {
      input.value = "";
      if (error instanceof ApiError || error instanceof Stale) {
        await failed(error);
      } else {
        $("sign-in-error").textContent = "The server cannot be reached. Try again.";
      }
    } finally {
      $("sign-in-button").disabled = false;
    }
  }

  window.XynergyApp = {
    $: $,
    make: make,
    show: show,
    themeToggle: themeToggle,
    ApiError: ApiError,
    Stale: Stale,
    errorOf: errorOf,
    query: query,
    fetchApi: fetchApi,
    restoreSession: restoreSession,
    signIn: signIn
  };
})();
