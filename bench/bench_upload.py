"""How large a space file the app's Analysis section takes: upload cvcrand CSVs of growing size (and their
.csv.gz) through the browser into the served app and time each until the p-value shows. Prints a table.

The app's server takes websocket messages up to the upload limit (200 MB; Jupyter's default of 10 MiB drops
the connection for larger files); above it the page sends only the file's name and size and the panel says
the file is too large. Run on a quiet machine for times; the sizes that work do not depend on load. Above
200 MB this harness cannot follow: Playwright's driver receives every websocket frame the page sends and runs
out of memory on a 250 MB one (the browser and the app are not the limit there).

    python bench/bench_upload.py                 # 12, 50, 100 and 200 MB
    python bench/bench_upload.py --sizes 12 150  # chosen sizes in MB
"""
from __future__ import annotations

import argparse
import gzip
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

from crt_widgets.core.io.spacefiles import write_cvcrand_csv  # noqa: E402
from crt_widgets.core.spaces.schemes import SchemeSet  # noqa: E402

N_CLUSTERS = 30
ROW_BYTES = 2 + 2 * N_CLUSTERS  # "0," + "0/1," per cluster + newline


def trial_files(folder: Path, megabytes: float, rng: np.random.Generator) -> tuple[Path, Path, int]:
    """Outcomes of 30 schools and a cvcrand CSV of random half/half schemes of about ``megabytes`` MB."""
    rows = int(megabytes * 1e6 / ROW_BYTES)
    packed = []
    for start in range(0, rows, 250_000):  # in blocks: the keys of 3 million schemes would take 700 MB
        keys = rng.random((min(250_000, rows - start), N_CLUSTERS))
        treated = keys <= np.sort(keys, axis=1)[:, [N_CLUSTERS // 2 - 1]]  # the 15 smallest keys of each row
        packed.append(np.packbits(treated, axis=1, bitorder="little"))
    space = folder / f"space_{megabytes:g}MB.csv"
    write_cvcrand_csv(space, SchemeSet(np.vstack(packed), N_CLUSTERS), 0)
    schools = [f"S{i:02d}" for i in range(1, N_CLUSTERS + 1)]
    pupils = pd.DataFrame({"school": np.repeat(schools, 10), "pupil": np.arange(10 * N_CLUSTERS)})
    pupils["score"] = rng.normal(50, 10, len(pupils)).round(1)
    outcomes = folder / "pupils.csv"
    pupils.to_csv(outcomes, index=False)
    return outcomes, space, rows


def upload(page, button: str, path: Path) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile(button, re.IGNORECASE)).click()
    chooser.value.set_files(str(path))


# a cvcrand CSV of random half/half schemes made in the page, handed to the upload as a user's browser hands
# over a local file (Playwright's own file transfer runs out of memory on files of a few hundred MB)
MAKE_SPACE = """([input, rows, n]) => {
  const parts = ['"SchemeChosen"' + ',""'.repeat(n) + '\\n'];
  const half = Math.floor(n / 2), row = new Array(n + 1);
  let block = [];
  for (let r = 0; r < rows; r++) {
    const order = [...Array(n).keys()];
    for (let i = n - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [order[i], order[j]] = [order[j], order[i]]; }
    row.fill(0); row[0] = r === 0 ? 1 : 0;
    for (let k = 0; k < half; k++) row[order[k] + 1] = 1;
    block.push(row.join(','));
    if (block.length === 100000) { parts.push(block.join('\\n') + '\\n'); block = []; }
  }
  if (block.length) parts.push(block.join('\\n') + '\\n');
  const file = new File(parts, 'space_in_page.csv', {type: 'text/csv'});
  const transfer = new DataTransfer();
  transfer.items.add(file);
  input.files = transfer.files;
  input.dispatchEvent(new Event('change'));
  return file.size;
}"""


def upload_made_in_page(page, rows: int) -> int:
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=re.compile("space", re.IGNORECASE)).click()
    return page.evaluate(MAKE_SPACE, [chooser.value.element, rows, N_CLUSTERS])


def main(sizes: list[float]) -> None:
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "crt_widgets", "dashboard", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = Path(tempfile.mkdtemp())
    rows = []
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        rng = np.random.default_rng(1)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for megabytes in sizes:
                outcomes, space, n = trial_files(folder, megabytes, rng)
                packed = space.with_name(space.name + ".gz")
                with open(space, "rb") as src, gzip.open(packed, "wb", compresslevel=6) as dst:
                    shutil.copyfileobj(src, dst)
                for path in (space, packed):
                    page = browser.new_page()
                    page.goto(f"http://127.0.0.1:{port}/", timeout=300_000)
                    page.wait_for_selector(".crt-kept", timeout=300_000)
                    page.get_by_role("tab", name="Analysis").click()
                    upload(page, "outcomes", outcomes)
                    page.wait_for_function("() => document.body.innerText.includes('pupils.csv')", timeout=120_000)
                    start = time.perf_counter()
                    if path.suffix == ".csv":
                        size = upload_made_in_page(page, n)
                    else:
                        size = path.stat().st_size
                        upload(page, "space", path)
                    try:
                        page.wait_for_function(
                            "(n) => [...document.querySelectorAll('.crt-pvalue')].some(e => e.innerText.includes(n))",
                            arg=f"of {n:,} schemes", timeout=900_000)
                        outcome = f"p-value shown in {time.perf_counter() - start:.1f} s"
                    except Exception as exc:  # noqa: BLE001 - the table says what happened
                        errors = page.locator(".crt-error").all_inner_texts()
                        outcome = f"failed: {errors[:1] or type(exc).__name__}"
                    rows.append((path.name, size / 1e6, n, outcome))
                    print(f"{rows[-1][0]:<24} {rows[-1][1]:>9.1f} MB {n:>12,} schemes  {outcome}", flush=True)
                    page.close()
                    path.unlink()
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(folder, ignore_errors=True)
    print("\nfile                        size (MB)      schemes  result")
    for name, size, n, outcome in rows:
        print(f"{name:<24} {size:>12.1f} {n:>12,}  {outcome}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[12, 50, 100, 200])
    main(parser.parse_args().sizes)
