/*! emailgate.js: drop-in email validation for signup forms. Plain JavaScript, no dependencies.
 *
 * Paste, with the service's own URL:
 *   <script src="https://verify.example/static/emailgate.js" defer></script>
 *   <input type="email" name="email" data-emailgate data-emailgate-key="pk_live_…">
 *
 * Settings, on the field (or on the script tag, as defaults for every field):
 *   data-emailgate-url         the service's base URL (default: where this script came from)
 *   data-emailgate-key         a public key (omit when the service runs open)
 *   data-emailgate-context     the decision's context (default "signup")
 *   data-emailgate-timeout     milliseconds to wait before letting the form through (default 3000)
 *   data-emailgate-message-*   a message text, e.g. data-emailgate-message-reject="…"
 * Or from code: EmailGate.init({ url, key, context, timeout, messages, selector }).
 *
 * The field is checked when it loses focus and when its form is submitted, never per keystroke.
 * Only a `reject` from the service blocks the form; a slow, unreachable or failing service lets
 * it through (fail-open): the server that receives the form checks again with a private key.
 */
(function (root) {
  "use strict";
  if (root.EmailGate) return; // loaded twice: keep the first

  var MESSAGES = {
    checking: "Checking your email address…",
    didYouMean: "Did you mean {suggestion}?",
    reject: "This email address can't be used. Please enter another one.",
    rejectInvalidEmail: "This doesn't look like an email address. Please check it.",
    rejectInvalidDomain: "This domain doesn't receive email. Please check the part after the @.",
    rejectLowQuality: "Disposable email addresses can't be used here. Please use your own.",
  };
  var REJECT_BY_REASON = {
    invalid_email: "rejectInvalidEmail",
    invalid_domain: "rejectInvalidDomain",
    low_quality: "rejectLowQuality",
  };
  var SELECTOR = "input[type=email][data-emailgate]";
  var DEFAULTS = { context: "signup", timeout: 3000, styles: true, messages: MESSAGES };
  var CSS =
    ".emailgate-message{font-size:.9em;font-weight:400;margin:.25em 0 0;min-height:1.2em}" +
    ".emailgate-message[data-state=reject]{color:#b00020}" +
    ".emailgate-message[data-state=checking]{color:#555}" +
    ".emailgate-suggestion{font:inherit;padding:0;border:0;background:none;color:#0b57d0;" +
    "text-decoration:underline;cursor:pointer}" +
    ".emailgate-suggestion:focus-visible{outline:2px solid #0b57d0;outline-offset:2px}";

  var script = document.currentScript;
  var scriptDefaults = script ? readData(script) : {};
  var scriptOrigin = script && script.src ? new URL(script.src, location.href).origin : "";
  var fields = new WeakMap(); // input -> its state
  var counter = 0;
  var styled = false;

  function readData(element) {
    var data = element.dataset;
    var messages = {};
    Object.keys(MESSAGES).forEach(function (name) {
      var attr = "emailgateMessage" + name.charAt(0).toUpperCase() + name.slice(1);
      if (data[attr] !== undefined) messages[name] = data[attr];
    });
    var out = { messages: messages };
    if (data.emailgateUrl) out.url = data.emailgateUrl;
    if (data.emailgateKey) out.key = data.emailgateKey;
    if (data.emailgateContext) out.context = data.emailgateContext;
    if (data.emailgateTimeout) out.timeout = Number(data.emailgateTimeout);
    if (data.emailgateStyles === "off") out.styles = false;
    return out;
  }

  // Later layers win, setting by setting and message by message; undefined means "not given".
  function layered(layers) {
    var out = { messages: {} };
    layers.forEach(function (layer) {
      Object.keys(layer || {}).forEach(function (k) {
        if (k === "messages") {
          Object.keys(layer.messages || {}).forEach(function (m) {
            if (typeof layer.messages[m] === "string") out.messages[m] = layer.messages[m];
          });
        } else if (layer[k] !== undefined) {
          out[k] = layer[k];
        }
      });
    });
    return out;
  }

  // Precedence: the field's attributes, then init() options, then the script tag, then defaults.
  function settingsFor(input, options) {
    var s = layered([DEFAULTS, scriptDefaults, options, readData(input)]);
    s.url = String(s.url || scriptOrigin || location.origin).replace(/\/+$/, "");
    if (!(s.timeout > 0 && isFinite(s.timeout))) s.timeout = DEFAULTS.timeout;
    return s;
  }

  function addStyles() {
    if (styled) return;
    styled = true;
    // A constructed sheet is not subject to a page's style-src policy; <style> is the fallback.
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    } catch (e) {
      var style = document.createElement("style");
      style.textContent = CSS;
      document.head.appendChild(style);
    }
  }

  function attach(input, options) {
    var field = fields.get(input);
    if (field) {
      // init() after the automatic one (a deferred script attaches marked fields at once):
      // its options apply from now on, and answers under the old settings are forgotten.
      if (options) {
        field.options = layered([field.options, options]);
        field.settings = settingsFor(input, field.options);
        field.results = new Map();
      }
      return field;
    }
    field = { input: input, options: options || {}, results: new Map(), shown: null };
    field.settings = settingsFor(input, field.options);
    if (field.settings.styles) addStyles();

    // The live region exists, empty, before anything is said in it, so screen readers announce.
    var region = document.createElement("div");
    region.id = "emailgate-message-" + ++counter;
    region.className = "emailgate-message";
    region.setAttribute("aria-live", "polite");
    // Outside a wrapping <label>: text inside it would become part of the field's name.
    var label = input.closest("label");
    (label && label.contains(input) ? label : input).insertAdjacentElement("afterend", region);
    var described = input.getAttribute("aria-describedby");
    input.setAttribute("aria-describedby", (described ? described + " " : "") + region.id);
    field.region = region;

    fields.set(input, field);
    input.addEventListener("blur", function () { refresh(field); });
    input.addEventListener("input", function () { show(field, null); });
    return field;
  }

  // Check the current value and show the answer, unless the value changed meanwhile.
  function refresh(field) {
    var email = field.input.value.trim();
    return check(field).then(function (result) {
      if (field.input.value.trim() === email) show(field, result);
      return result;
    });
  }

  // One request per distinct value: a blur and then a submit of the same value ask once.
  function check(field) {
    var email = field.input.value.trim();
    if (!email) return Promise.resolve(null);
    var known = field.results.get(email);
    if (known) return known;
    say(field, "checking");
    var promise = ask(field.settings, email).then(function (result) {
      if (!result) field.results.delete(email); // fail-open answers are not remembered
      return result;
    });
    field.results.set(email, promise);
    return promise;
  }

  // Resolves to the RESULT, or to null when the service cannot say in time (fail-open).
  function ask(settings, email) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var headers = { "Content-Type": "application/json" };
    if (settings.key) headers["X-API-Key"] = settings.key;
    var timer;
    var timedOut = new Promise(function (resolve) {
      timer = setTimeout(function () {
        if (controller) controller.abort();
        resolve(null);
      }, settings.timeout);
    });
    var answered = fetch(settings.url + "/api/v1/verify", {
      method: "POST",
      headers: headers,
      body: JSON.stringify({ email: email, context: settings.context }),
      credentials: "omit",
      signal: controller ? controller.signal : undefined,
    })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) { return body && body.success && body.data ? body.data : null; })
      .catch(function () { return null; });
    return Promise.race([answered, timedOut]).then(function (result) {
      clearTimeout(timer);
      return result;
    });
  }

  function show(field, result) {
    var input = field.input;
    var fresh = result !== field.shown;
    field.shown = result;
    var rejected = !!result && result.decision === "reject";
    if (rejected) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    var region = field.region;
    region.textContent = "";
    region.dataset.state = rejected ? "reject" : "";
    if (!result) return;
    var messages = field.settings.messages;
    // The suggestion first: a typo-squat domain (gmial.com) is also disposable, and "Did you
    // mean …?" is what the user needs to read, the reason for the refusal only after it.
    if (result.did_you_mean) region.appendChild(suggestion(field, result.did_you_mean));
    if (rejected) {
      if (result.did_you_mean) region.appendChild(document.createTextNode(" "));
      var line = document.createElement("span");
      line.textContent = messages[REJECT_BY_REASON[result.reason]] || messages.reject;
      region.appendChild(line);
    }
    // Once per answer, though a blur and a submit may both show it.
    if (fresh) input.dispatchEvent(new CustomEvent("emailgate:result", { detail: result, bubbles: true }));
  }

  // "Did you mean <button>x@gmail.com</button>?" with the button placed where {suggestion} is.
  function suggestion(field, address) {
    var wrap = document.createElement("span");
    var parts = field.settings.messages.didYouMean.split("{suggestion}");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "emailgate-suggestion";
    button.textContent = address;
    button.addEventListener("click", function () {
      // Through the prototype's setter, so frameworks that track the value (React) see it.
      var setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;
      setter.call(field.input, address);
      field.input.dispatchEvent(new Event("input", { bubbles: true }));
      field.input.dispatchEvent(new Event("change", { bubbles: true }));
      field.input.focus();
      refresh(field);
    });
    wrap.appendChild(document.createTextNode(parts[0]));
    wrap.appendChild(button);
    wrap.appendChild(document.createTextNode(parts.slice(1).join(address)));
    return wrap;
  }

  function say(field, name) {
    field.region.dataset.state = name;
    field.region.textContent = field.settings.messages[name];
  }

  // Submit: runs first (capturing on the document); holds the form until every field is known.
  var passing = new WeakSet();
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (passing.has(form)) return; // our own requestSubmit(), after the checks
    var attached = Array.prototype.filter.call(form.elements || [], function (el) {
      return fields.has(el);
    });
    if (!attached.length) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    if (form.dataset.emailgateChecking) return; // a second click while checking
    form.dataset.emailgateChecking = "1";
    hold(form, event.submitter, attached);
  }, true);

  function hold(form, submitter, attached) {
    var values = attached.map(function (el) { return el.value.trim(); });
    Promise.all(attached.map(function (el) { return check(fields.get(el)); }))
      .then(function (results) {
        var changed = attached.some(function (el, i) { return el.value.trim() !== values[i]; });
        if (changed) return hold(form, submitter, attached); // edited meanwhile: check again
        delete form.dataset.emailgateChecking;
        var blocked = null;
        results.forEach(function (result, i) {
          var field = fields.get(attached[i]);
          show(field, result);
          if (!blocked && result && result.decision === "reject") blocked = field;
        });
        if (blocked) blocked.input.focus();
        else release(form, submitter);
      })
      .catch(function () {
        // A fault of the widget itself must not cost a signup either.
        delete form.dataset.emailgateChecking;
        release(form, submitter);
      });
  }

  function release(form, submitter) {
    // A known answer arrives while the first submit event is still being dispatched, when the
    // browser ignores requestSubmit(); the next task is after it.
    setTimeout(function () {
      if (typeof form.requestSubmit !== "function") return form.submit(); // no events, no validation
      passing.add(form);
      try {
        // Dispatches the submit event at once (or none, when the form is now invalid).
        try {
          form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
        } catch (e) {
          form.requestSubmit(); // the submitter is no longer a submit button
        }
      } finally {
        passing.delete(form);
      }
    }, 0);
  }

  function init(options) {
    var selector = (options && options.selector) || SELECTOR;
    return Array.prototype.map.call(document.querySelectorAll(selector), function (input) {
      return attach(input, options).input;
    });
  }

  root.EmailGate = {
    init: init,
    attach: function (input, options) { attach(input, options); },
    messages: MESSAGES, // the default texts, for reference
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(); });
  } else {
    init();
  }
})(window);
