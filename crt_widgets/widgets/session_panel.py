"""Save and re-open a design session, and undo the last settings change (the Design section's session bar).

A session file (:mod:`crt_widgets.core.io.session`) holds the cluster data and every setting of the design,
the draw's typed seed, the power inputs and the simulation's settings. Re-opening it restores all of them
exactly; a file edited or damaged since it was saved is refused with a message in the panel. Draws are not
restored: the draw log is their record, and the re-opened design shows no allocation until a new draw.

>>> from crt_widgets.datasets import load_dickinson
>>> state = DesignState()
>>> state.load(load_dickinson(), "Dickinson counties")
>>> panel = SessionPanel(state)
>>> state.cutoff = 0.05
>>> panel.undo.disabled, state.undo_steps
(False, 1)
>>> panel.undo.click()
>>> state.cutoff, panel.undo.disabled
(0.1, True)
"""
from __future__ import annotations

import numbers
from pathlib import Path

import ipywidgets as w

from crt_widgets.commands._voila import MB, UPLOAD_LIMIT_BYTES
from crt_widgets.core.io.session import Session, read_session, session_json, write_session
from crt_widgets.widgets.formatting import message_html
from crt_widgets.widgets.state import DESIGN_SETTINGS, DesignState, PowerInputs
from crt_widgets.widgets.uploads import take_upload

SESSION_FILE = "design_session.json"
SIMULATION_SETTINGS = ("n_trials", "covariate_r2", "seed")


def session_settings(state: DesignState) -> dict:
    """Everything a session keeps besides the data: the design's settings, the draw's typed seed, the arm
    names, the power inputs and the simulation's settings."""
    q, run = state.power_inputs, state.simulation
    return {**state.settings(), "draw_seed_text": state.draw_seed_text, "arm_names_text": state.arm_names_text,
            "power": {name: getattr(q, name) for name in PowerInputs.class_trait_names()},
            "simulation": {name: getattr(run, name) for name in SIMULATION_SETTINGS}}


def _is_text_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# what each setting must be, and how to say it
_CHECKS = {
    "cluster_id": (lambda v: isinstance(v, str), "a column name"),
    "covariates": (_is_text_list, "a list of column names"),
    "categorical": (_is_text_list, "a list of column names"),
    "stratify": (_is_text_list, "a list of column names"),
    "weights": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and _is_number(x) for k, x in v.items()),
                "column name -> number"),
    "n_treat": (_is_int, "a whole number"), "n_arms": (_is_int, "a whole number"),
    "metric": (lambda v: v in ("l2", "l1"), "'l2' or 'l1'"),
    "cutoff": (_is_number, "a number"), "use_n_best": (lambda v: isinstance(v, bool), "true or false"),
    "n_best": (_is_int, "a whole number"), "size": (_is_int, "a whole number"),
    "sampling": (lambda v: v in ("auto", "enumerate", "sample"), "'auto', 'enumerate' or 'sample'"),
    "seed": (_is_int, "a whole number"), "draw_seed_text": (lambda v: isinstance(v, str), "text"),
    "arm_names_text": (lambda v: isinstance(v, str), "text"),
}


def check_session(session: Session) -> None:
    """Refuse a session whose settings cannot be this version's (a ValueError naming the setting), before
    anything in the app changes."""
    settings = session.settings
    missing = [key for key in DESIGN_SETTINGS if key not in settings]
    if missing:
        raise ValueError(f"session: the file lacks the setting(s) {', '.join(missing)}")
    for key, (check, what) in _CHECKS.items():
        if key in settings and not check(settings[key]):
            raise ValueError(f"session: setting {key!r} should be {what}, found {settings[key]!r}")
    columns = set(map(str, session.data.columns))
    named = [settings["cluster_id"], *settings["covariates"], *settings["categorical"], *settings["stratify"]]
    absent = [c for c in named if c and c not in columns]
    if absent:
        raise ValueError(f"session: the settings name column(s) the data do not have: {', '.join(absent)}")
    for group, names in (("power", PowerInputs.class_trait_names()), ("simulation", SIMULATION_SETTINGS)):
        values = settings.get(group, {})
        if not isinstance(values, dict) or any(k not in names for k in values):
            raise ValueError(f"session: the {group} settings are not this version's ({values!r})")


def apply_session(state: DesignState, session: Session) -> None:
    """Restore the data and every setting of ``session`` into ``state`` (checked first: nothing changes when
    the file is refused)."""
    check_session(session)
    settings = session.settings
    state.draw_seed_text = settings.get("draw_seed_text", "")
    state.restore(session.data, settings, session.source)
    if "arm_names_text" in settings:  # after the arms' number, which resets the names (sessions before arm names: none)
        state.arm_names_text = settings["arm_names_text"]
    q = state.power_inputs
    with q.hold_trait_notifications():
        for name, value in settings.get("power", {}).items():
            setattr(q, name, value)
    for name, value in settings.get("simulation", {}).items():
        setattr(state.simulation, name, value)


class SessionPanel:
    """Save session (a download, and a copy in the records folder when the app keeps one), Open session
    (an upload), and Undo (the last settings change; disabled when there is nothing to undo)."""

    def __init__(self, state: DesignState) -> None:
        from crt_widgets.widgets.downloads import download_link

        self._link = download_link
        self.state = state
        fit = {"width": "auto", "min_width": "110px"}  # the label decides the width: nothing cut on a phone
        self.save = w.Button(description="Save session", icon="save", tooltip="the data and every setting, one file",
                             layout=w.Layout(**fit))
        self.open = w.FileUpload(accept=".json", multiple=False, description="Open session", layout=w.Layout(**fit))
        self.undo = w.Button(description="Undo", icon="undo", tooltip="revert the last settings change",
                             layout=w.Layout(**fit))
        self.download = w.HTML()
        self.message = w.HTML()
        self.save.on_click(lambda _: self.prepare())
        self.open.observe(self._on_open, names="value")
        self.undo.on_click(lambda _: self._undo())
        state.observe(self._show_undo, names="undo_steps")
        state.observe(self._outdated, names=["design", "data"])
        self.widget = w.VBox([w.HBox([self.save, self.open, self.undo], layout=w.Layout(flex_flow="row wrap")),
                              self.download, self.message])
        self.widget.add_class("crt-session")
        self._show_undo()

    def _show_undo(self, change=None) -> None:
        steps = self.state.undo_steps
        self.undo.disabled = steps == 0
        self.undo.tooltip = (f"revert the last settings change ({steps} step{'s' * (steps != 1)} back possible)"
                             if steps else "nothing to undo")

    def _outdated(self, change=None) -> None:
        self.download.value = ""  # a session file prepared earlier holds earlier settings

    def _undo(self) -> None:
        self.message.value = ""
        self.state.undo()

    def prepare(self) -> str:
        """Make the session file of the design now in force: a download link, and with a records folder a copy
        there (never over a file: a new name). Returns the file's text."""
        s = self.state
        self.message.value = ""
        if s.data is None:
            self.message.value = message_html("Save session: load the clusters first.")
            return ""
        try:
            text = session_json(s.data, session_settings(s), s.source)
        except ValueError as exc:
            self.message.value = message_html(str(exc))
            return ""
        note = ""
        if s.records_dir:
            try:
                path = write_session(Path(s.records_dir) / SESSION_FILE, s.data, session_settings(s), s.source)
                note = message_html(f"Session saved in {path}", "info")
            except (OSError, ValueError) as exc:
                note = message_html(f"Could not save a copy on disk: {exc}", "warning")
        self.download.value = self._link(SESSION_FILE, text, "application/json", "Download the session (JSON)") + note
        return text

    def _on_open(self, change) -> None:
        uploaded = take_upload(change, self.open)
        if uploaded is not None:
            name, content, _ = uploaded
            self.open_bytes(content, name)

    def open_bytes(self, content: bytes, name: str = "the session file") -> bool:
        """Re-open a session from the bytes of its file; a refused file is a message in the panel."""
        try:
            if len(content) > UPLOAD_LIMIT_BYTES:
                raise ValueError(f"{name} is {len(content) / MB:.1f} MB, more than the "
                                 f"{UPLOAD_LIMIT_BYTES / MB:.0f} MB one upload can carry")
            session = read_session(content, name)
            apply_session(self.state, session)
        except ValueError as exc:
            self.message.value = message_html(str(exc))
            return False
        rows = len(session.data)
        self.message.value = message_html(
            f"Session re-opened from {name} (saved {session.created} with crt-widgets {session.package_version}): "
            f"{rows} clusters and every setting restored; draw again to allocate.", "info")
        return True


__all__ = ["SessionPanel", "session_settings", "apply_session", "check_session", "SESSION_FILE"]
