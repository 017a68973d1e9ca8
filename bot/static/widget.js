/*
 * shopbot chat widget. A store pastes one tag:
 *
 *   <script src="https://bot.example.com/widget.js" data-color="#0b5fff"
 *     data-position="right" data-greeting="Hi! Need help finding something?"
 *     data-title="Shop assistant" async></script>
 *
 * It adds a round launcher button, a greeting bubble and, on click, a panel holding the
 * bot's chat page (`<bot>/?embed=1`) in an iframe. The bot's address comes from this
 * script's own `src`, so the tag is the only configuration.
 *
 * Rules it keeps for the host page: no dependencies; one global, `window.ShopbotWidget`
 * (open, close, toggle); everything lives in a shadow root under a `<shopbot-widget>`
 * element, so the shop's CSS cannot restyle it and its CSS cannot leak out; text from
 * data attributes goes in with textContent, never as markup.
 */
(function () {
  "use strict";

  if (window.ShopbotWidget) return; // pasted twice: the first copy wins

  var script =
    document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!script || !script.src) return;

  var DEFAULT_COLOR = "#0b5fff";
  // The directory holding widget.js, so a bot served under a path prefix still works.
  var botBase = new URL(".", script.src);
  var chatUrl = new URL("./?embed=1", botBase).href;

  function attribute(name, fallback) {
    var value = script.getAttribute("data-" + name);
    return value === null ? fallback : value;
  }

  var options = {
    color: attribute("color", DEFAULT_COLOR).trim(),
    position: attribute("position", "right") === "left" ? "left" : "right",
    greeting: attribute("greeting", "Hi! Need help finding something?").trim(),
    title: attribute("title", "Shop assistant").trim() || "Shop assistant",
  };
  if (!window.CSS || !CSS.supports("color", options.color)) options.color = DEFAULT_COLOR;

  var CSS_TEXT = [
    ":host { all: initial; }",
    "* { box-sizing: border-box; }",
    ".sbw-root { position: fixed; bottom: 20px; z-index: 2147483000;",
    "  font: 14px/1.4 system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif;",
    "  color: #1f2328; }",
    ".sbw-right { right: 20px; } .sbw-left { left: 20px; }",
    ".sbw-launcher { width: 56px; height: 56px; border-radius: 50%; border: 0; padding: 0;",
    "  margin: 0; cursor: pointer; display: flex; align-items: center; justify-content: center;",
    "  box-shadow: 0 4px 14px rgba(0,0,0,.25); transition: transform .15s ease; }",
    ".sbw-launcher:hover { transform: scale(1.06); }",
    ".sbw-launcher:focus-visible, .sbw-close:focus-visible, .sbw-dismiss:focus-visible {",
    "  outline: 3px solid #ffbf47; outline-offset: 2px; }",
    ".sbw-launcher svg { width: 28px; height: 28px; fill: currentColor; }",
    ".sbw-greeting { position: absolute; bottom: 68px; width: max-content; max-width: 240px;",
    "  background: #fff; border-radius: 12px; padding: 10px 30px 10px 12px; cursor: pointer;",
    "  box-shadow: 0 4px 14px rgba(0,0,0,.18); animation: sbw-in .25s ease-out; }",
    ".sbw-right .sbw-greeting { right: 0; } .sbw-left .sbw-greeting { left: 0; }",
    ".sbw-dismiss { position: absolute; top: 4px; right: 4px; width: 22px; height: 22px;",
    "  border: 0; border-radius: 50%; background: transparent; color: #57606a; cursor: pointer;",
    "  font-size: 16px; line-height: 22px; padding: 0; }",
    ".sbw-panel { position: absolute; bottom: 68px; width: 380px; height: 600px;",
    "  max-height: calc(100vh - 110px); max-width: calc(100vw - 40px); background: #fff;",
    "  border-radius: 14px; overflow: hidden; box-shadow: 0 8px 30px rgba(0,0,0,.3);",
    "  display: flex; flex-direction: column; animation: sbw-in .2s ease-out; }",
    ".sbw-right .sbw-panel { right: 0; } .sbw-left .sbw-panel { left: 0; }",
    ".sbw-header { display: flex; align-items: center; justify-content: space-between;",
    "  padding: 10px 12px; font-weight: 600; font-size: 15px; }",
    ".sbw-close { border: 0; background: transparent; color: inherit; cursor: pointer;",
    "  font-size: 22px; line-height: 1; width: 32px; height: 32px; border-radius: 6px; }",
    ".sbw-frame { flex: 1; width: 100%; border: 0; background: #fff; }",
    "[hidden] { display: none !important; }",
    "@keyframes sbw-in { from { opacity: 0; transform: translateY(8px); } }",
    "@media (prefers-reduced-motion: reduce) { * { animation: none !important;",
    "  transition: none !important; } }",
    // Phones: the open panel takes the whole screen; its header has the close button.
    "@media (max-width: 480px) {",
    "  .sbw-panel { position: fixed; inset: 0; width: 100vw; height: 100%; max-width: none;",
    "    max-height: none; border-radius: 0; }",
    "  .sbw-open .sbw-launcher { display: none; } }",
  ].join("\n");

  function element(tag, className, attributes) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    for (var name in attributes || {}) node.setAttribute(name, attributes[name]);
    return node;
  }

  function chatIcon() {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute(
      "d",
      "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2zm3 6v2h10V9H7zm0 4v2h7v-2H7z"
    );
    svg.appendChild(path);
    return svg;
  }

  // Black or white, whichever reads better on the shop's colour (WCAG relative luminance).
  function textColorOn(node) {
    var rgb = (getComputedStyle(node).backgroundColor.match(/[\d.]+/g) || []).map(Number);
    if (rgb.length < 3) return "#fff";
    var linear = rgb.slice(0, 3).map(function (c) {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
    return luminance > 0.4 ? "#111" : "#fff";
  }

  var host, root, launcher, greeting, panel, frame, closeButton;
  var isOpen = false;

  function build() {
    host = document.createElement("shopbot-widget");
    // Inline !important beats any host stylesheet rule that might hide or move the host.
    host.style.setProperty("all", "initial", "important");
    var shadow = host.attachShadow({ mode: "open" });
    var style = document.createElement("style");
    style.textContent = CSS_TEXT;
    shadow.appendChild(style);

    root = element("div", "sbw-root sbw-" + options.position);
    var panelId = "sbw-panel";

    launcher = element("button", "sbw-launcher", {
      type: "button",
      "aria-label": "Open " + options.title + " chat",
      "aria-expanded": "false",
      "aria-controls": panelId,
    });
    launcher.appendChild(chatIcon());
    launcher.style.backgroundColor = options.color;
    launcher.addEventListener("click", toggle);

    panel = element("div", "sbw-panel", { id: panelId, role: "dialog" });
    panel.setAttribute("aria-label", options.title);
    panel.hidden = true;
    var header = element("div", "sbw-header");
    header.style.backgroundColor = options.color;
    var heading = element("span", "sbw-title");
    heading.textContent = options.title;
    closeButton = element("button", "sbw-close", { type: "button", "aria-label": "Close chat" });
    closeButton.textContent = "\u00d7";
    closeButton.addEventListener("click", close);
    header.appendChild(heading);
    header.appendChild(closeButton);
    frame = element("iframe", "sbw-frame", { allow: "clipboard-write" });
    frame.title = options.title;
    panel.appendChild(header);
    panel.appendChild(frame);

    root.appendChild(panel);
    if (options.greeting && !greetingDismissed()) root.appendChild(buildGreeting());
    root.appendChild(launcher);
    shadow.appendChild(root);
    document.body.appendChild(host);

    var ink = textColorOn(launcher);
    launcher.style.color = ink;
    header.style.color = ink;

    // Key events from inside the shadow root reach the document too (they are composed).
    document.addEventListener("keydown", onKeydown);
    // The chat page may ask to be closed (Escape pressed inside the frame).
    window.addEventListener("message", function (event) {
      var data = event.data;
      if (event.source === frame.contentWindow && event.origin === botBase.origin &&
          data && data.type === "shopbot:close") {
        close();
      }
    });
  }

  function buildGreeting() {
    greeting = element("div", "sbw-greeting", { role: "status" });
    var text = element("span", "sbw-greeting-text");
    text.textContent = options.greeting;
    var dismiss = element("button", "sbw-dismiss", {
      type: "button",
      "aria-label": "Dismiss greeting",
    });
    dismiss.textContent = "\u00d7";
    dismiss.addEventListener("click", function (event) {
      event.stopPropagation();
      hideGreeting();
      launcher.focus();
    });
    greeting.appendChild(text);
    greeting.appendChild(dismiss);
    greeting.addEventListener("click", open);
    return greeting;
  }

  var DISMISSED_KEY = "shopbot-widget-greeting-dismissed";

  function greetingDismissed() {
    try {
      return window.sessionStorage.getItem(DISMISSED_KEY) === "1";
    } catch (error) {
      return false; // storage blocked (privacy mode, sandbox): show it
    }
  }

  function hideGreeting() {
    if (!greeting) return;
    greeting.hidden = true;
    try {
      window.sessionStorage.setItem(DISMISSED_KEY, "1");
    } catch (error) {
      /* storage blocked: it just shows again on the next page */
    }
  }

  function onKeydown(event) {
    if (isOpen && (event.key === "Escape" || event.key === "Esc")) close();
  }

  function open() {
    if (isOpen) return;
    isOpen = true;
    if (!frame.getAttribute("src")) frame.src = chatUrl; // load the chat on first open only
    hideGreeting();
    panel.hidden = false;
    root.classList.add("sbw-open");
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close " + options.title + " chat");
    closeButton.focus();
  }

  function close() {
    if (!isOpen) return;
    isOpen = false;
    panel.hidden = true;
    root.classList.remove("sbw-open");
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open " + options.title + " chat");
    launcher.focus();
  }

  function toggle() {
    if (isOpen) close();
    else open();
  }

  // Callable before the page has a body: the calls wait for the widget to be built.
  var ready = false;
  var pending = [];
  function whenReady(action) {
    return function () {
      if (ready) action();
      else pending.push(action);
    };
  }

  window.ShopbotWidget = Object.freeze({
    open: whenReady(open),
    close: whenReady(close),
    toggle: whenReady(toggle),
  });

  function start() {
    build();
    ready = true;
    pending.splice(0).forEach(function (action) {
      action();
    });
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
