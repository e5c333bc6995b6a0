"""Accessible names for the app's controls, and the page helper that applies them in the browser.

ipywidgets links a text box's or a list's ``description`` to it with a ``<label>``, but a slider's handle,
a list without a description, a group of toggle buttons and an upload button's icon get no accessible name
of their own (WCAG 2.1 success criteria 1.3.1 and 4.1.2). Python marks each such control with
:func:`name_control` (a CSS class carrying its name, percent-encoded); :class:`PageHelpers`, a widget
without a visible part placed once in the app, runs a small script in the page that copies those names
onto the focusable elements, makes every slider announce the value its readout shows (the cutoff slider
moves on a log10 scale: it announces "0.0104", not "-1.98"; :func:`log_keys` makes its arrow keys move it
by a twentieth of a decade), marks the pressed toggle button
(``aria-pressed``), hides the icon glyphs from screen readers and drops the file counter that the upload
buttons append to their text ("Upload CSV (0)" after an upload). The same widget works in Voila and in
JupyterLab: nothing is fetched, the script travels with the widget.

>>> import ipywidgets as w
>>> slider = name_control(w.FloatSlider(), "Weight of inciis")
>>> accessible_name(slider), [c for c in slider._dom_classes if c.startswith("crt-aria-")]
('Weight of inciis', ['crt-aria-Weight%20of%20inciis'])
>>> accessible_name(name_control(slider, "Weight of hispanic"))
'Weight of hispanic'
"""
from __future__ import annotations

from urllib.parse import quote, unquote

import anywidget
import ipywidgets as w

PREFIX = "crt-aria-"
NO_COUNT = "crt-upload-nocount"  # an upload button whose "(n)" file counter the page hides
LOG_KEYS = "crt-log-keys"  # a log-scale slider the arrow keys move by a twentieth of a decade

_SCRIPT = r"""
const PREFIX = "crt-aria-";
function set(el, key, value) {
  if (el.getAttribute(key) !== value) el.setAttribute(key, value);
}
function named(el) {
  const token = Array.from(el.classList).find((c) => c.startsWith(PREFIX));
  if (!token) return;
  let name;
  try { name = decodeURIComponent(token.slice(PREFIX.length)); } catch (e) { return; }
  if (el.matches(".widget-toggle-buttons, .jupyter-widget-toggle-buttons")) {
    set(el, "role", "group");           // the group is named; each button keeps its option's text
    set(el, "aria-label", name);
    return;
  }
  if (el.matches("button")) { set(el, "aria-label", name); return; }
  const targets = el.querySelectorAll("input:not([type=file]), select, textarea, .noUi-handle");
  targets.forEach((t) => set(t, "aria-label", name));
  if (!targets.length) set(el, "aria-label", name);
}
function apply() {
  document.querySelectorAll('[class*="' + PREFIX + '"]').forEach(named);
  // a control Python did not name takes its visible label's text (ipywidgets does not link a slider's or a
  // toggle group's label to it): no slider or group is left without a name, whichever section made it
  document.querySelectorAll(".widget-slider, .jupyter-widget-slider").forEach((slider) => {
    const handle = slider.querySelector(".noUi-handle");
    const label = slider.querySelector(":scope > .widget-label");
    if (handle && !handle.hasAttribute("aria-label") && label && label.textContent.trim())
      set(handle, "aria-label", label.textContent.trim());
  });
  document.querySelectorAll(".widget-toggle-buttons, .jupyter-widget-toggle-buttons").forEach((group) => {
    const label = group.querySelector(":scope > .widget-label");
    if (!group.hasAttribute("aria-label") && label && label.textContent.trim()) {
      set(group, "role", "group");
      set(group, "aria-label", label.textContent.trim());
    }
  });
  // a slider announces what its readout shows (a log-scale slider's handle would say the exponent)
  document.querySelectorAll(".widget-slider, .jupyter-widget-slider").forEach((slider) => {
    const handle = slider.querySelector(".noUi-handle");
    const readout = slider.querySelector(".widget-readout, .jupyter-widget-readout");
    if (handle && readout && readout.textContent.trim()) set(handle, "aria-valuetext", readout.textContent.trim());
  });
  document.querySelectorAll(".widget-toggle-button, .jupyter-widget-toggle-button").forEach((b) =>
    set(b, "aria-pressed", b.classList.contains("mod-active") ? "true" : "false"));
  document.querySelectorAll(".jupyter-widgets i.fa, .jupyter-button i.fa").forEach((i) => set(i, "aria-hidden", "true"));
  // ipywidgets writes title="null" on labels without a tooltip: a hover would show the word "null"
  document.querySelectorAll('label[title="null"]').forEach((l) => l.removeAttribute("title"));
  // every upload button of the app: the app empties the widget after reading a file, so the count says "(0)"
  document.querySelectorAll(".crt-upload-nocount, .widget-upload, .jupyter-widget-upload").forEach((b) => {
    b.childNodes.forEach((n) => {
      if (n.nodeType === 3 && / \(\d+\)$/.test(n.textContent)) n.textContent = n.textContent.replace(/ \(\d+\)$/, "");
    });
  });
}
let scheduled = false;
function schedule() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => { scheduled = false; apply(); });
}
// a log-scale slider (class crt-log-keys) moves by a twentieth of a decade per arrow key (half a decade with
// Page Up/Down, its ends with Home/End) to values of two significant digits: its own step, fine enough for any
// typed q, would need hundreds of presses. The value goes in through the readout, as if typed there.
function logKeys(event) {
  const handle = event.target && event.target.closest && event.target.closest(".crt-log-keys .noUi-handle");
  if (!handle) return;
  const moves = { ArrowRight: 0.05, ArrowUp: 0.05, ArrowLeft: -0.05, ArrowDown: -0.05, PageUp: 0.5, PageDown: -0.5 };
  const slider = handle.closest(".crt-log-keys");
  const readout = slider.querySelector(".widget-readout, .jupyter-widget-readout");
  const low = Number(handle.getAttribute("aria-valuemin")), high = Number(handle.getAttribute("aria-valuemax"));
  let exponent;
  if (event.key === "Home") exponent = low;
  else if (event.key === "End") exponent = high;
  else if (event.key in moves && readout) exponent = Math.log10(Number(readout.textContent)) + moves[event.key];
  else return;
  if (!isFinite(exponent) || !readout) return;
  event.preventDefault();
  event.stopImmediatePropagation();
  const value = Number(Math.pow(10, Math.min(high, Math.max(low, exponent))).toPrecision(2));
  readout.textContent = String(value);
  const enter = new KeyboardEvent("keydown", { key: "Enter", bubbles: true });
  Object.defineProperty(enter, "keyCode", { get: () => 13 });
  readout.dispatchEvent(enter);
  handle.focus();
}
function render({ el }) {
  el.style.display = "none";
  if (window.__crtPageHelpers) { schedule(); return; }
  window.__crtPageHelpers = true;
  document.addEventListener("keydown", logKeys, true);
  new MutationObserver(schedule).observe(document.body, {
    subtree: true, childList: true, characterData: true, attributes: true,
    attributeFilter: ["class", "aria-valuetext", "title"],
  });
  schedule();
}
export default { render };
"""


class PageHelpers(anywidget.AnyWidget):
    """Applies the accessible names of :func:`name_control` in the page (display it once, anywhere)."""

    _esm = _SCRIPT


def name_control(widget: w.DOMWidget, name: str) -> w.DOMWidget:
    """Give ``widget`` the accessible name ``name`` (replacing an earlier one); returns the widget.

    The name is what a screen reader says for the control: say what it sets, with the covariate or arm it
    belongs to ("Weight of inciis", "Stratify on location"), never a word shared by several controls."""
    if not str(name).strip():
        raise ValueError("name: an accessible name must not be empty")
    for token in [c for c in widget._dom_classes if c.startswith(PREFIX)]:
        widget.remove_class(token)
    widget.add_class(PREFIX + quote(str(name), safe=""))
    return widget


def accessible_name(widget: w.DOMWidget) -> str:
    """The name :func:`name_control` gave ``widget``, else its ``description`` (what its label says)."""
    for token in widget._dom_classes:
        if token.startswith(PREFIX):
            return unquote(token[len(PREFIX):])
    return str(getattr(widget, "description", "") or "")


def log_keys(slider: w.FloatLogSlider) -> w.FloatLogSlider:
    """Let the arrow keys move a log-scale slider by a twentieth of a decade (Page Up/Down: half a decade,
    Home/End: its ends), to values of two significant digits; its own fine step is kept for typed values."""
    slider.add_class(LOG_KEYS)
    return slider


def hide_file_count(upload: w.FileUpload) -> w.FileUpload:
    """Drop the "(n)" the upload button appends to its text: it counts files waiting in the widget, which
    the app empties after reading them, so it would say "(0)" after every upload."""
    upload.add_class(NO_COUNT)
    return upload
