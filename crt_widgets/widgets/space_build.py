"""Building a large randomization space in the background: a progress bar with an estimate, and Cancel.

A design of more than :data:`BACKGROUND_SCHEMES` candidate schemes (a stratified enumeration of 30 clusters
has 16 to 20 million) is built in a thread, so the kernel keeps answering the page: the bar moves, Cancel
is heard, and nothing is shown of the space until it is complete. :class:`SpaceBuild` is the model (stage,
schemes done of the total, seconds left; the state runs it), :class:`SpaceBuildPanel` its view.
Widget updates from a thread are sent by ipykernel as they happen.

Four steps, in the order the work is done: the schemes are generated, then their balance scores computed
(both in :meth:`ConstrainedDesign.build`), the validity of the constrained space, then each covariate's
|SMD| over the kept schemes (:func:`smd_distribution`). The estimate of the seconds left is the step's
elapsed time scaled by what remains of it.

>>> run = SpaceBuild()
>>> run.begin("Generating the schemes", 1, 4)
>>> run.report(250, 1000)
>>> run.done, run.total
(250, 1000)
>>> panel = SpaceBuildPanel(run)
>>> "1 of 4" in panel.label.value and "250 of 1,000" in panel.label.value
True
"""
from __future__ import annotations

import html
import threading
import time

import ipywidgets as w
import traitlets as t

from crt_widgets.widgets.accessibility import name_control

# above this many candidate schemes the space is built in a background thread, with progress and Cancel
# (a million schemes build in well under a second: the page need not show a bar for them)
BACKGROUND_SCHEMES = 1_000_000
CANCELLED_MESSAGE = ("Cancelled: the randomization space was not built, and nothing of it is shown. Change a setting "
                     "(for example sample instead of enumerate all) to build another.")


class SpaceBuild(t.HasTraits):
    """Progress of the space being built in the background: which stage, schemes done of the total, an
    estimate of the seconds left; ``cancel()`` asks the build to stop between chunks."""

    running = t.Bool(False)
    stage = t.Unicode("")
    step = t.Int(0)                 # stage number, from 1
    steps = t.Int(0)
    done = t.Int(0)
    total = t.Int(0)
    seconds_left = t.Float(None, allow_none=True)
    cancelled = t.Bool(False)       # the last build was cancelled (the state's error says so too)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stage_start = time.perf_counter()

    # -- the state runs a build through these -------------------------------------------------------
    def start(self, work, name: str = "crt-space-build") -> None:
        """Run ``work(stop)`` in a daemon thread (``stop`` a callable returning True once cancelled)."""
        self._stop.set()  # a build of earlier inputs stops (the state discards what it would have given)
        stop = threading.Event()
        self._stop = stop
        self.cancelled = False
        self.running = True
        self._thread = threading.Thread(target=work, args=(stop.is_set,), daemon=True, name=name)
        self._thread.start()

    def begin(self, stage: str, step: int, steps: int) -> None:
        """A new stage: its name and number; the count starts again."""
        self._stage_start = time.perf_counter()
        with self.hold_trait_notifications():
            self.stage, self.step, self.steps = stage, step, steps
            self.done, self.total, self.seconds_left = 0, 0, None

    def report(self, done: int, total: int) -> None:
        """``done`` of ``total`` in the current stage (the core's ``on_progress``)."""
        elapsed = time.perf_counter() - self._stage_start
        left = elapsed * (total - done) / done if done > 0 and total >= done else None
        with self.hold_trait_notifications():
            self.done, self.total, self.seconds_left = int(done), int(total), left

    def finish(self, cancelled: bool = False) -> None:
        with self.hold_trait_notifications():
            self.running = False
            self.cancelled = cancelled

    # -- the user ---------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the build after the chunk now running (the state then says it was cancelled)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the build to end (scripts and tests); True when none is running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()


def progress_text(run: SpaceBuild) -> str:
    """The line beside the bar: the stage, schemes done of the total, the estimate.

    >>> run = SpaceBuild()
    >>> run.begin("Balance of each covariate over the kept schemes", 4, 4)
    >>> progress_text(run)
    'Step 4 of 4, balance of each covariate over the kept schemes: working…'
    """
    where = f"Step {run.step} of {run.steps}, {run.stage[:1].lower()}{run.stage[1:]}"
    if not run.total:
        return f"{where}: working…"
    left = "" if run.seconds_left is None else f", about {max(run.seconds_left, 0):.0f} s left"
    return f"{where}: {run.done:,} of {run.total:,} schemes{left}"


class SpaceBuildPanel:
    """A progress bar, its line of text and a Cancel button, shown while a large space is built."""

    def __init__(self, run: SpaceBuild) -> None:
        self.run = run
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="100%"))
        self.bar.add_class("crt-build-bar")
        name_control(self.bar, "Progress of building the randomization space")
        self.label = w.HTML()
        self.label.add_class("crt-build-text")
        self.cancel = w.Button(description="Cancel", icon="times", tooltip="Stop building the randomization space")
        self.cancel.add_class("crt-build-cancel")
        name_control(self.cancel, "Cancel building the randomization space")
        self.cancel.on_click(lambda _: run.cancel())
        self.widget = w.VBox([self.label, w.HBox([self.bar, self.cancel])])
        self.widget.add_class("crt-build")
        run.observe(self._show, names=["running", "stage", "step", "done", "total", "seconds_left"])
        self._show()

    def _show(self, change=None) -> None:
        run = self.run
        self.widget.layout.display = None if run.running else "none"
        self.cancel.disabled = not run.running
        self.bar.value = run.done / run.total if run.total else 0.0
        self.label.value = f"<b>Building the randomization space.</b> {html.escape(progress_text(run))}"
