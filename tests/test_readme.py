"""The README's Python examples run as written (with the names they assume defined, and the benchmark-sized
runs made small), and the numbers their comments state hold."""
from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)

# what each block takes from its context
PRELUDES = [
    "",
    "outcomes = crt.datasets.load_dickinson_outcome()\n"
    "space = 'results/design_space.json.gz'\n"
    "covariates = ['location', 'inciis', 'uptodateonimmunizations', 'hispanic', 'incomecat']\n"
    "categorical = ['location', 'incomecat']\n",
    "eds = crt.datasets.simulate_edlead(seed=1)\n"
    "strata = eds['health_system']\n"
    "clusters = crt.datasets.load_dickinson()\n"
    "covariates = ['inciis', 'uptodateonimmunizations', 'hispanic']\n",
    "calls = crt.datasets.simulate_callcenter(n_calls=3000, seed=1)\n",
    "",
    "",
]
# benchmark-sized calls made small (the API is the same)
SMALLER = {"n_draws=1_000_000": "n_draws=1_000", "n_trials=1000": "n_trials=4",
           "cutoff=0.01, seed=7)": "cutoff=0.01, seed=7, size=20_000)"}


def test_readme_python_examples_run_and_their_comments_hold(tmp_path, monkeypatch):
    assert len(BLOCKS) == len(PRELUDES), "a README example was added or removed: give it its prelude here"
    for original in SMALLER:
        assert original in README, f"{original!r} is no longer in the README"
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec("import crt_widgets as crt", names)
    for number, (prelude, block) in enumerate(zip(PRELUDES, BLOCKS), start=1):
        for original, small in SMALLER.items():
            block = block.replace(original, small)
        exec(prelude, names)
        exec(compile(block, f"README block {number}", "exec"), names)
        if number == 1:
            design, allocation = names["design"], names["allocation"]
            assert len(design.scores) == 12870 and len(design.space_index) == 1288  # the comments' numbers
            assert design.probabilities().shape[0] == 16
            saved = sorted(p.name for p in (tmp_path / "results").iterdir())
            assert "design_space.json.gz" in saved and "design_space_cvcrand.csv" in saved
            assert allocation.seed == 12345
        if number == 2:
            result = names["result"]
            assert 0 < result.p_value <= 1 and result.conf_int[0] < result.estimate < result.conf_int[1]
        if number == 3:
            assert names["arms"].shape == (1_000, len(names["strata"]))
            assert names["design"].draw().arm_sizes().tolist() == [10] * 8
        if number == 4:
            assert set(names["fit"].variance_components) == {"center_ID", "rep_ID", "residual"}
        if number == 5:
            assert_comment_numbers(block, names)
        if number == 6:  # the second save was refused, the saved space verified
            assert "design_allocation.csv exists already" in str(names["refused"])
            assert names["space"].notes == () and len(names["space"].schemes) == 1288


def assert_comment_numbers(block: str, names: dict) -> None:
    """Each line ``expression  # <number> ...`` evaluates to that number, rounded as written (the README's
    printed numbers are the code's)."""
    checked = 0
    for line in block.splitlines():
        code, _, comment = line.partition("#")
        number = re.match(r"\s*(-?\d+(?:\.\d+)?)\b", comment)
        if not number or "=" in code.split("(")[0]:
            continue
        value = eval(code.strip(), names)
        decimals = len(number.group(1).partition(".")[2])
        assert round(float(value), decimals) == float(number.group(1)), line
        checked += 1
    assert checked >= 6
    assert len(names["grid"]) == 54 and names["sw"].n_clusters == 24
