"""The README's Python examples run as written (with the names they assume defined, and the benchmark-sized
runs made small), and the numbers their comments state hold."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np

README = (Path(__file__).parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)

# benchmark-sized calls made small (the API is the same)
SMALLER = {"n_draws=1_000_000": "n_draws=1_000", "n_trials=1000": "n_trials=4",
           "cutoff=0.01, seed=7)": "cutoff=0.01, seed=7, size=20_000)"}


def test_no_block_uses_a_name_it_does_not_define_first():
    """Run as written, one after the other in a fresh session, as a reader copies them: no block may lean on a
    name only a later block (or a test's prelude) defines. The README once used outcomes, space, covariates,
    categorical, strata, eds, clusters and calls without defining them; the test defined them itself."""
    import builtins
    defined = set(dir(builtins)) | {"crt"}
    for number, block in enumerate(BLOCKS, start=1):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                defined.add(node.name)
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
        assert not used - defined, f"README block {number} uses {sorted(used - defined)} before any block defines it"


def test_readme_python_examples_run_and_their_comments_hold(tmp_path, monkeypatch):
    for original in SMALLER:
        assert original in README, f"{original!r} is no longer in the README"
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec("import crt_widgets as crt", names)
    checked = 0
    for number, block in enumerate(BLOCKS, start=1):
        for original, small in SMALLER.items():
            block = block.replace(original, small)
        exec(compile(block, f"README block {number}", "exec"), names)
        checked += assert_comment_numbers(block, names)
        if "zoom_spec(" in block:  # the layout and theme lines of the app's section
            assert names["zoom"]["width"] == "container" and names["SHADE_BACKGROUND"] == (
                "color-mix(in srgb, var(--jp-warn-color1, #f57c00) 30%, var(--jp-layout-color0, #fff))")
        if "design = crt.ConstrainedDesign(" in block:
            design, allocation = names["design"], names["allocation"]
            assert len(design.scores) == 12870 and len(design.space_index) == 1288  # the comments' numbers
            assert design.probabilities().shape[0] == 16
            saved = sorted(p.name for p in (tmp_path / "results").iterdir())
            assert "design_space.json.gz" in saved and "design_space_cvcrand.csv" in saved
            assert allocation.seed == 12345
        if "permutation_test(outcomes, \"outcome\", \"county\", \"results/" in block:
            result = names["result"]
            assert 0 < result.p_value <= 1 and result.conf_int[0] < result.estimate < result.conf_int[1]
        if "crt.gee(" in block:
            fit = names["fit"]
            assert (round(fit.params["arm"], 4), round(fit.bse["arm"], 4), fit.df, round(fit.pvalues["arm"], 4)) == \
                (0.4402, 0.1473, 12, 0.0113)
            assert fit.standard_errors.loc["arm"].round(4).tolist() == [0.1082, 0.1473, 0.1259, 0.1133, 0.137]
            assert fit.conf_int().loc["arm"].round(4).tolist() == [0.1192, 0.7612]
            assert f"```text\n{fit.summary()}\n```" in README  # the printed summary, as shown
            icc = names["crt"].icc(names["outcomes"], "outcome", "county")
            assert (round(icc.estimate, 4), round(icc.ci_low, 4), round(icc.ci_high, 4)) == (0.0164, 0.0075, 0.0427)
            latent = names["crt"].icc(names["outcomes"], "outcome", "county", method="latent")
            assert (round(latent.estimate, 4), round(latent.ci_low, 4), round(latent.ci_high, 4)) == (0.0277, 0.0121, 0.0658)
        if "crt.stratified_arms(strata" in block:
            assert names["arms"].shape == (1_000, len(names["strata"]))
            assert names["design"].draw().arm_sizes().tolist() == [10] * 8
        if "crt.mixed_model(\"call_CSAT" in block:
            assert set(names["fit"].variance_components) == {"center_ID", "rep_ID", "residual"}
            kr = names["kr"]
            assert kr.ddf == "kenward-roger" and round(kr.df["arm"], 2) == 8.0
            # the printed summary under the block is the summary this block prints (summary2 pads lines with spaces)
            shown = re.search(r"```text\n(.*?)```", README[README.index("## Models and power"):], re.S).group(1)
            assert [line.rstrip() for line in str(kr.summary()).splitlines()] == [
                line.rstrip() for line in shown.splitlines()]
            curve = names["curve"]
            assert len(curve) == 2 * 27 and (curve.power_low <= curve.power).all() and (curve.power <= curve.power_high).all()
        if "smd_distribution(counties)" in block:
            from crt_widgets.core.diagnostics.smd import smd_distribution
            from crt_widgets.core.io.spacehash import sha256_of_space

            counties = names["counties"]
            table = smd_distribution(counties)
            assert table.attrs["n_schemes"] == len(counties.space_index) and list(table.index) == [
                "inciis (mean (sd))", "hispanic (mean (sd))", "location = Urban (%)"]
            assert sha256_of_space(counties) == counties.draw(7).audit()["space"]["sha256"]
        if "crt.multiperiod_power_grid(" in block:
            assert len(names["grid"]) == 54 and names["sw"].n_clusters == 24
        if "crt.SteppedWedgeDesign(" in block:
            assert names["allocation"].treatment_matrix().shape == (12, 5)
            saved = sorted(p.name for p in (tmp_path / "results").iterdir())
            assert "stepped_wedge_space.csv" in saved and "stepped_wedge_audit.json" in saved
            assert assert_comment_numbers(block, names) == 6  # every number stated in the block is checked
        if "except FileExistsError as error:" in block:  # the second save was refused, the saved space verified
            assert "trial/design_allocation.csv exists already" in names["refused"]
            assert names["space"].notes == () and len(names["space"].schemes) == len(names["drawn"].design.space)
    assert checked >= 10  # the numbers the README states are checked, not only run


def assert_comment_numbers(block: str, names: dict) -> int:
    """Each line ``expression  # <number> ...`` evaluates to that number, rounded as written (the README's
    printed numbers are the code's)."""
    checked = 0
    for line in block.splitlines():
        code, _, comment = line.partition("#")
        number = re.match(r"\s*(-?\d+(?:\.\d+)?)\b", comment)
        if not number or "=" in code.split("(")[0]:
            continue
        value = eval(code.strip(), names)
        if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
            continue  # a table or result object: its numbers are checked by name above
        decimals = len(number.group(1).partition(".")[2])
        assert round(float(value), decimals) == float(number.group(1)), line
        checked += 1
    return checked
