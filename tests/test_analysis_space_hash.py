"""The analysis carries the SHA-256 of the randomization space it used: the design's (its commitment and draws)."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

import crt_widgets as crt
from crt_widgets.core.analysis.trial import analyze_trial
from crt_widgets.core.io.spacehash import sha256_of_space
from crt_widgets.core.spaces.space import RandomizationSpace

COVARIATES = ["location", "inciis", "uptodateonimmunizations", "hispanic", "incomecat"]


@pytest.fixture(scope="module")
def design():
    return crt.ConstrainedDesign(crt.datasets.load_dickinson(), COVARIATES, 8, cluster_id="county",
                                 categorical=["location", "incomecat"], seed=12345)


@pytest.fixture(scope="module")
def outcomes():
    return crt.datasets.load_dickinson_outcome()


def test_analyze_trial_over_an_allocation_records_the_design_space_hash(design, outcomes):
    allocation = design.draw(5)
    result = analyze_trial(outcomes, "outcome", "county", allocation, ["inciis"], family="binomial",
                           models=("gee",))
    assert result.space_sha256 == sha256_of_space(design) == design.space.sha256(design.parameters())
    assert len(result.space_sha256) == 64 and result.to_dict()["space_sha256"] == result.space_sha256


def test_the_saved_json_space_gives_the_same_hash(design, outcomes, tmp_path):
    allocation = design.draw(5)
    allocation.save(tmp_path)
    space = next(tmp_path.glob("*_space.json.gz"))
    result = analyze_trial(outcomes, "outcome", "county", str(space), family="binomial", models=())
    assert result.space_sha256 == sha256_of_space(design)


def test_a_bare_scheme_matrix_hashes_its_schemes_over_the_cluster_ids(outcomes):
    schemes = np.array([[1] * 8 + [0] * 8, [0] * 8 + [1] * 8, [1, 0] * 8, [0, 1] * 8])
    ids = np.arange(1, 17)
    result = analyze_trial(outcomes, "outcome", "county", schemes, cluster_ids=ids, observed=2, family="binomial",
                           models=())
    assert result.space_sha256 == RandomizationSpace.from_arms(schemes, ids).sha256()
    other = analyze_trial(outcomes, "outcome", "county", schemes[[1, 0, 2, 3]], cluster_ids=ids, observed=2,
                          family="binomial", models=())
    assert other.space_sha256 != result.space_sha256  # the order of the schemes is part of the space


def test_the_app_analysis_record_carries_the_hash_of_the_draw():
    from crt_widgets.widgets.app import TrialApp

    app = TrialApp(offline=False)
    app.design.state.draw(77)
    app.analysis.state.load(crt.datasets.load_dickinson_outcome(), "outcomes.csv", outcome="outcome",
                            cluster="county", covariates=["inciis"], family="binomial")
    assert app.analysis.state.error == "" and app.analysis.state.result is not None
    links = dict(re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([^"]+)"', app.analysis.downloads.value))
    record = json.loads(base64.b64decode(links["analysis_record.json"]))
    expected = app.design.state.space_sha256
    assert record["space_sha256"] == record["space"]["sha256"] == app.design.state.draws[-1]["space_sha256"] == expected
