"""Building a large randomization space with progress and Cancel: the core's callbacks (stratified enumeration,
covariate sums, the design's build, the SMD distribution), the Cancelled exception, and the dashboard's
background build with its progress bar and Cancel button."""
from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np
import pytest

import crt_widgets.core.spaces.schemes as schemes_module
from crt_widgets import ConstrainedDesign
from crt_widgets.core.diagnostics.smd import smd_distribution
from crt_widgets.core.io.spacehash import sha256_of_space
from crt_widgets.core.progress import Cancelled, Progress, as_progress
from crt_widgets.core.spaces.schemes import StratumRule, enumerate_stratified
from crt_widgets.datasets import load_dickinson

# the packed bytes of the stratified enumeration before it was built chunk by chunk (the bool-matrix version
# of the code, run once): the order of the schemes is what a seed draws from, so it must never change
PINNED_ORDER = {
    "strata 4,4,4,2 treat 7": ([0] * 4 + [1] * 4 + [2] * 4 + [3] * 2, 7, 432,
                               "4bc834aeb6db8df6199acc10b607d19a6f2e55963a22f16844f4805615cfe9b3"),
    "strata 5,4,3,2,1 treat 7": ([0] * 5 + [1] * 4 + [2] * 3 + [3] * 2 + [4], 7, 2460,
                                 "189829dd5dafc617a86f1e6520a5c06579c672365846237cfeba4520a945d1ba"),
    "strata 7,5,3 treat 8": ([0] * 7 + [1] * 5 + [2] * 3, 8, 3150,
                             "53e6d010d4a80182ed43c3f1bc29242baee35b0112df007f216863fe05fc5979"),
    "interleaved 3 strata of 6 treat 9": ([0, 1, 2] * 6, 9, 8000,
                                          "f928079571a4f9d67d17e4d41a6ce573923ef58fa9a5137465649f99f118b798"),
}


def _rule(codes, n_treat) -> StratumRule:
    codes = np.asarray(codes)
    return StratumRule.build(codes, tuple(str(i) for i in range(codes.max() + 1)), n_treat)


@pytest.mark.parametrize("name", list(PINNED_ORDER))
@pytest.mark.parametrize("chunk_rows", [schemes_module.CHUNK_ROWS, 7, 1])
def test_stratified_enumeration_keeps_its_order_whatever_the_chunks(name, chunk_rows, monkeypatch):
    codes, n_treat, count, digest = PINNED_ORDER[name]
    monkeypatch.setattr(schemes_module, "CHUNK_ROWS", chunk_rows)  # chunk edges inside strata and paths
    packed = enumerate_stratified(_rule(codes, n_treat)).packed
    assert len(packed) == count == _rule(codes, n_treat).space_size()
    assert hashlib.sha256(packed.tobytes()).hexdigest() == digest


def test_stratified_enumeration_is_every_balanced_scheme_once():
    """Brute force over all 2^12 subsets: the balanced ones, each exactly once."""
    codes = np.array([0] * 5 + [1] * 4 + [2] * 3)
    rule = _rule(codes, 6)
    got = enumerate_stratified(rule).matrix()
    expected = set()
    for treated in itertools.combinations(range(12), 6):
        row = np.zeros(12, dtype=int)
        row[list(treated)] = 1
        per_stratum = np.bincount(codes, weights=row, minlength=3)
        if all(t in rule.options(s) for s, t in enumerate(per_stratum.astype(int))):
            expected.add(tuple(row))
    assert len(got) == len(expected) == len({tuple(r) for r in got}) == rule.space_size()
    assert {tuple(r) for r in got} == expected


def test_stratified_enumeration_of_more_than_64_clusters():
    """Schemes wider than one 64-bit word: 70 clusters, a stratum of 66 treating 2 or 3 and one of 4 treating
    1 or 0 (3 in all), pinned as the bool-matrix code enumerated them."""
    codes = np.array([0] * 66 + [1] * 4)
    schemes = enumerate_stratified(_rule(codes, 3))
    assert len(schemes) == _rule(codes, 3).space_size() == math.comb(66, 2) * 4 + math.comb(66, 3) == 54340
    assert hashlib.sha256(schemes.packed.tobytes()).hexdigest() == \
        "430f51c1392087dc24a303027b6e16c518441f772530f268c120c6381718c186"
    m = schemes.matrix()
    assert m[0].nonzero()[0].tolist() == [0, 1, 66] and m[1].nonzero()[0].tolist() == [0, 1, 67]
    assert m[8580].nonzero()[0].tolist() == [0, 1, 2] and (m.sum(axis=1) == 3).all()


def test_enumeration_reports_increasing_counts_to_the_total(monkeypatch):
    monkeypatch.setattr(schemes_module, "CHUNK_ROWS", 1000)
    rule = _rule([0, 1, 2] * 6, 9)
    seen = []
    enumerate_stratified(rule, on_progress=lambda done, total: seen.append((done, total)))
    counts = [done for done, _ in seen]
    assert {total for _, total in seen} == {8000}
    assert counts[0] == 0 and counts[-1] == 8000 and len(counts) >= 9
    assert all(b > a for a, b in zip(counts[1:], counts[2:]))


def test_enumeration_cancelled_between_chunks(monkeypatch):
    monkeypatch.setattr(schemes_module, "CHUNK_ROWS", 1000)
    calls = []
    with pytest.raises(Cancelled, match="cancelled: stopped on request before the work was finished"):
        enumerate_stratified(_rule([0, 1, 2] * 6, 9), on_progress=lambda done, total: calls.append(done),
                             stop=lambda: len(calls) >= 3)
    assert calls[-1] < 8000  # stopped before the end


def test_treated_sums_in_chunks_are_the_sums_of_one_pass(monkeypatch):
    """Chunked with progress, the sums are bit for bit those of the same additions over the whole set."""
    rule = _rule([0] * 5 + [1] * 4 + [2] * 3 + [3] * 2 + [4], 7)
    schemes = enumerate_stratified(rule)
    x = np.random.default_rng(4).normal(size=(15, 3))
    whole = schemes.treated_sums(x)
    monkeypatch.setattr(schemes_module, "CHUNK_ROWS", 100)
    seen = []
    chunked = schemes.treated_sums(x, on_progress=lambda done, total: seen.append((done, total)))
    assert np.array_equal(whole, chunked)
    np.testing.assert_allclose(whole, schemes.matrix().astype(float) @ x, rtol=0, atol=1e-12)
    assert seen[-1] == (2460, 2460) and len(seen) == 25
    with pytest.raises(Cancelled):
        schemes.treated_sums(x, stop=lambda: True)


def _stratified_design(**kwargs) -> ConstrainedDesign:
    return ConstrainedDesign(load_dickinson(), ["inciis", "hispanic", "location"], 8, categorical=["location"],
                             cluster_id="county", stratify="location", enumerate=True, seed=1, **kwargs)


def test_design_build_reports_progress_and_gives_the_same_space():
    seen = []
    built = _stratified_design().build(on_progress=lambda done, total: seen.append((done, total)))
    plain = _stratified_design()
    assert len(built.space_index) == len(plain.space_index) == 500
    assert sha256_of_space(built) == sha256_of_space(plain)
    assert np.array_equal(built.scores, plain.scores)
    counts = [done for done, _ in seen]
    assert seen[-1] == (2 * 4900, 2 * 4900) and counts[0] == 0 and counts == sorted(set(counts))


def test_design_build_cancelled_then_built_again():
    design = _stratified_design()
    with pytest.raises(Cancelled, match="cancelled: building the randomization space was stopped on request"):
        design.build(stop=lambda: True)
    assert len(design.space_index) == 500  # nothing half-built stays behind


def test_smd_distribution_reports_progress_and_cancels():
    design = _stratified_design()
    seen = []
    table = smd_distribution(design, chunk_rows=100, on_progress=lambda done, total: seen.append((done, total)))
    assert table.equals(smd_distribution(design))
    assert seen[-1] == (500, 500) and len(seen) == 5
    with pytest.raises(Cancelled):
        smd_distribution(design, stop=lambda: True)


@pytest.mark.parametrize("kwargs, message", [
    ({"on_progress": 3}, "on_progress: expected a callable(done, total) (or None), got int"),
    ({"stop": True}, "stop: expected a callable returning True to stop (or None), got bool"),
])
def test_progress_arguments_must_be_callables(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        as_progress(**kwargs)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        _stratified_design().build(**kwargs)
    assert not Progress().active


# -- the dashboard: a background build, its progress bar and Cancel -----------------------------------------
@pytest.fixture
def small_background(monkeypatch):
    """A space of more than 1,000 schemes counts as large: the background path runs on the Dickinson example."""
    import crt_widgets.widgets.state as state_module

    monkeypatch.setattr(state_module, "BACKGROUND_SCHEMES", 1000)


def _dashboard(load: bool = True, **settings):
    from crt_widgets.widgets import DesignDashboard

    dash = DesignDashboard(example=None, offline=False)
    if load:
        _load(dash, **settings)
    return dash


def _load(dash, **settings) -> None:
    """The Dickinson counties, with ``settings`` applied in the same load (one build, no earlier one to race)."""
    dash.state.load(load_dickinson(), "Dickinson counties", cluster_id="county", n_treat=8,
                    covariates=["inciis", "hispanic", "location"], categorical=["location"], **settings)


def test_large_space_is_built_in_the_background_with_progress(small_background):
    dash = _dashboard(load=False)
    state = dash.state
    stages = []
    state.building.observe(lambda change: stages.append(change["new"]), names="step")
    bars = []
    dash.building.bar.observe(lambda change: bars.append(change["new"]), names="value")
    _load(dash, stratify=["location"], sampling="enumerate")   # 4,900 schemes: "large" in these tests
    assert state.wait(60) and not state.building.running
    assert state.error == "" and state.kept == 500
    plain = state._two_arm()            # the same inputs, built at once in this thread
    assert state.space_sha256 == sha256_of_space(plain)
    assert state.smd.equals(smd_distribution(plain))
    assert set(stages) >= {1, 2, 3, 4} and max(bars) == 1.0
    assert dash.building.widget.layout.display == "none"       # the bar goes once the space is there
    assert dash.outputs.results.layout.display is None
    assert "500" in dash.cutoff.count.value


def test_cancel_button_stops_the_build_and_the_controls_stay_usable(small_background):
    dash = _dashboard(load=False)
    state = dash.state
    shown = []

    def press_cancel(change) -> None:   # the user presses Cancel once the bar has moved
        if change["new"] > 0 and state.building.running and not shown:
            shown.append((dash.building.widget.layout.display, dash.building.label.value))
            dash.building.cancel.click()

    state.building.observe(press_cancel, names="done")
    _load(dash, stratify=["location"], sampling="enumerate")
    assert state.wait(60)
    from crt_widgets.widgets.space_build import CANCELLED_MESSAGE

    assert shown and shown[0][0] is None and "Step 1 of 4" in shown[0][1]
    assert state.design is None and state.error == CANCELLED_MESSAGE and state.building.cancelled
    assert state.error.startswith("Cancelled: the randomization space was not built")
    assert dash.outputs.results.layout.display == "none"        # nothing of a space that was not built
    assert dash.draw.button.disabled and dash.building.widget.layout.display == "none"
    assert "Cancelled" in dash.cutoff.warnings.value
    assert "Cancelled" in dash.outputs.problem.value and "last valid inputs" not in dash.outputs.problem.value
    state.building.unobserve_all("done")
    state.sampling = "sample"                                    # the controls still work
    assert state.wait(60)
    assert state.error == "" and state.kept > 0 and not state.building.cancelled
    assert dash.outputs.results.layout.display is None and not dash.draw.button.disabled


def test_inputs_changed_during_a_build_discard_it(small_background):
    state = _dashboard(stratify=["location"], sampling="enumerate").state
    state.cutoff = 0.05                # while building: the build starts again with the new cutoff
    assert state.wait(60)
    assert state.error == "" and state.kept == len(_stratified_design(cutoff=0.05).space_index) == 248
    assert state.cutoff == 0.05 and state.space_sha256 == sha256_of_space(state._two_arm())


def test_small_spaces_are_built_at_once():
    state = _dashboard().state
    state.stratify = ["location"]
    state.sampling = "enumerate"        # 4,900 schemes: no thread, the result is there when the call returns
    assert not state.building.running and state.kept == 500 and state.building._thread is None
