"""Find errors and Explain at 50,000 images, in a real browser (Playwright + Debian's Chromium).

Generates a 50,000-line label list in a temporary folder: links (250 symlinked folders) to the
200 real photos of ``../shared/data/imagenet-sample``, each link a distinct item. The scan of
the 50,000 items is built from one real scan of the 200 photos by the built-in model (the rows
of a photo are repeated for its links) and put in the scan cache, so the pages open on a
scanned set; the benchmark measures the pages, not the model. A code base whose scans keep
their mistakes' thumbnails gets those too (what its own scan of the links would have kept).

Then, for each code base given (this checkout, and ``--before DIR``, e.g. ``/work/main``, in the
same run so the machine's speed drifts alike), a fresh server and browser time each interaction
from the input (its Enter key or pointer press, as the page saw it) to the end of the script run
it triggers, on the browser's own clock; the time from the harness's first action (Playwright
typing into a box before the Enter, for one) is reported beside it:
* Find errors: open with the set; next page (×4); search class names; a true-class filter; a
  confusion row; clear the search;
* Explain: open the page (the sidebar's link); the image picker: from typing a name to a
  matching option in the open menu.

The filter, a confusion row and opening Explain are sampled ``--repeat`` times (3) per server;
``--rounds R`` alternates the two code bases R times (each a fresh server and browser).

Usage: python scripts/bench_find_errors.py [--items 50000] [--before /work/main] [--rounds 2]
       [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from browser_helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

from explainer import settings  # noqa: E402

ARGS = CHROMIUM_ARGS

SAMPLE = Path(os.environ.get("LIMA_BENCH_SAMPLE", ROOT.parent / "shared" / "data" / "imagenet-sample"))
# Records every change of Streamlit's script state with the browser's clock, and the time of the
# page's last change (a fragment's rerun can be so short that the browser never draws the
# "running" state: then the page's last change is when the run's result was shown).
#
# It also records when the user's input reached the page: the first Enter key or pointer press
# after the mark (the browser's own event time). An interaction is timed from that input, as a
# user feels it; the harness's typing before the Enter (Playwright's fill, a round trip per
# call) is not part of it. The time from the harness's first action is reported as well.
OBSERVER = """() => {
  const app = document.querySelector("[data-testid='stApp']");
  window.__states = [];
  window.__changed = 0;
  window.__input = null;
  if (!window.__inputs) {  // once per document: capture, so no handler can stop it first
    window.__inputs = true;
    const first = e => { if (window.__input === null) window.__input = e.timeStamp; };
    document.addEventListener('keydown', e => { if (e.key === 'Enter') first(e); }, true);
    document.addEventListener('pointerdown', first, true);
  }
  if (window.__observed === app) return;  // one pair of observers per app element
  window.__observed = app;
  new MutationObserver(() => window.__states.push(
      [performance.now(), app.getAttribute('data-test-script-state')]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  new MutationObserver(() => { window.__changed = performance.now(); })
    .observe(app, {subtree: true, childList: true, attributes: true, characterData: true});
}"""
# Done: a run was seen to start and end; or, with no run seen, the page changed after the input
# and has been still (and not running) for QUIET_MS.
QUIET_MS = 1500
RUN_DONE = """([mark, quiet]) => {
  const app = document.querySelector("[data-testid='stApp']");
  const s = window.__states.filter(x => x[0] >= mark);
  if (s.some(x => x[1] === 'running')) return s[s.length - 1][1] === 'notRunning';
  return window.__changed > mark && performance.now() - window.__changed > quiet
    && app.getAttribute('data-test-script-state') === 'notRunning';
}"""
RUN_END = """() => {
  const s = window.__states;
  return s.some(x => x[1] === 'running') ? s[s.length - 1][0] : window.__changed;
}"""


# -- the data ------------------------------------------------------------------------------------


def make_list(work: Path, count: int) -> tuple[Path, list[tuple[str, int]]]:
    """A label list of ``count`` links to the sample's photos; returns it and (photo, label)."""
    photos = [tuple(line.rsplit(maxsplit=1)) for line in (SAMPLE / "labels.txt").read_text().splitlines() if line]
    photos = [(name, int(label)) for name, label in photos]
    lines = []
    for i in range(count):
        folder = work / f"r{i // len(photos):04d}"
        if not folder.exists():
            folder.symlink_to(SAMPLE / "images", target_is_directory=True)
        name, label = photos[i % len(photos)]
        lines.append(f"{folder.name}/{name} {label}")
    path = work / "big.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, photos


def seed_scan(list_path: Path, scans: Path) -> tuple[str, str, str]:
    """Scan the 200 photos for real, repeat their rows for the links, and cache the result for
    the 50,000-item set. Returns a class name and an image name to search for, and a mistake."""
    from explainer import load_classifier
    from explainer.data import label_list_set
    from explainer.scan import ScanCache, ScanResult, scan

    clf = load_classifier("efficientnet_lite0", device="cpu")
    sample = label_list_set(SAMPLE / "labels.txt", clf.class_names)
    # The real scan of the photos is kept between runs of this script (same model, same photos).
    kept = Path(tempfile.gettempdir()) / f"lima-bench-sample-{sample.fingerprint()[:12]}-{clf.weights_hash[:12]}.json"
    if kept.is_file():
        real = ScanResult.from_json(kept.read_text())
    else:
        start = time.perf_counter()
        real = scan(clf, sample)
        print(f"real scan of {len(sample)} photos: {time.perf_counter() - start:.1f} s", flush=True)
        kept.write_text(real.to_json())
    by_name = {r.name: r for r in real.rows}
    big = label_list_set(list_path, clf.class_names, root="/")
    rows = tuple(replace(by_name[item.name], key=item.key, name=item.name) for item in big.items)
    result = ScanResult(big.name, big.fingerprint(), clf.id, clf.weights_hash, rows, 500.0, real.created)
    # Written without the rows' signatures, which older code cannot read (the same file serves
    # both code bases); the pages never need them.
    doc = asdict(result)
    for row in doc["rows"]:
        row.pop("sig", None)
    cache = ScanCache(scans)
    path = cache.path(clf, big)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    mistakes = sum(not r.correct for r in rows)
    print(f"{len(rows):,} rows, {mistakes:,} mistakes; scan JSON {path.stat().st_size / 1e6:.1f} MB")
    # What a real scan of the links by code that keeps its mistakes' thumbnails would have kept
    # (one picture per photo, under each link's own key); written per server (start_server).
    from explainer.thumbnails import framing_of, thumbnail_from_view

    framing = framing_of(clf.preprocess)
    pictures = {r.name: thumbnail_from_view(clf.view(sample.item(r.key).load()), framing) for r in real.mistakes()}
    wrong = {r.key for r in rows if not r.correct}
    SCAN_THUMBNAILS[:] = [(item, framing, pictures[item.name]) for item in big.items if item.key in wrong]
    mistake = real.mistakes()[0]
    return clf.class_names[mistake.label].split(",")[0][:6].lower(), mistake.name.split("_")[1][:6], mistake.name


# -- the server and the browser -------------------------------------------------------------------


SCAN_THUMBNAILS: list = []  # (item, framing, JPEG bytes) of every mistake (seed_scan)


def keeps_scan_thumbnails(code: Path) -> bool:
    """Whether this code base's scans keep their mistakes' thumbnails (newer than 2026-12-01)."""
    try:
        return "thumbnail_from_view" in (code / "explainer" / "scan.py").read_text()
    except OSError:
        return False


def start_server(code: Path, work: Path, tag: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Each server starts with the thumbnails its own scan would have kept (none for older code),
    # and reuses the model's ONNX export.
    cache = work / f"cache-{tag}"
    cache.mkdir(exist_ok=True)
    if SCAN_THUMBNAILS and keeps_scan_thumbnails(code):
        from explainer.thumbnails import ThumbnailCache

        kept = ThumbnailCache(max_items=1, folder=cache / "thumbnails")
        for item, framing, data in SCAN_THUMBNAILS:
            kept.put(item, framing, data)
    exports = settings.current().cache_dir / "backends"
    if exports.is_dir() and not (cache / "backends").exists():
        (cache / "backends").symlink_to(exports, target_is_directory=True)
    env = dict(
        os.environ,
        LIMA_CACHE_DIR=str(cache),
        LIMA_RUNS_DIR=str(work / f"runs-{tag}"),
        LIMA_SCANS_DIR=str(work / "scans"),
        LIMA_DATA_ROOT="/",
        LIMA_DEVICE="cpu",
    )
    log = open(work / f"server-{tag}.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
        ],
        cwd=code,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit(f"the {tag} server did not start (see {work}/server-{tag}.log)")


def idle(page, timeout_ms: int = 600_000) -> None:
    page.locator("[data-testid='stApp'][data-test-connection-state='CONNECTED']").wait_for(
        state="attached", timeout=timeout_ms
    )
    page.wait_for_timeout(300)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        state="attached", timeout=timeout_ms
    )


REPEAT = 3  # samples of the filter, the confusion row and the Explain page (--repeat)
# (seconds from the input, seconds from the harness's first action) of every timed run, in order
TIMINGS: list[tuple[float, float]] = []


def timed_run(page, act, timeout_ms: int = 600_000) -> float:
    """Seconds from the input ``act()`` makes (its Enter key or pointer press) to the end of the
    script run it triggers, on the browser's clock. Both that and the time from the start of
    ``act()`` are appended to :data:`TIMINGS`."""
    page.evaluate(OBSERVER)
    mark = page.evaluate("performance.now()")
    act()
    page.wait_for_function(RUN_DONE, arg=[mark, QUIET_MS], timeout=timeout_ms, polling="raf")
    end = page.evaluate(RUN_END)
    start = page.evaluate("window.__input")
    if start is None or start < mark:
        raise RuntimeError("no Enter key or pointer press reached the page")
    page.wait_for_timeout(400)  # let the thumbnails arrive before the next input
    idle(page)
    TIMINGS.append(((end - start) / 1000, (end - mark) / 1000))
    return (end - start) / 1000


def bench(code: Path, work: Path, tag: str, list_path: Path, words: tuple[str, str, str]) -> dict:
    """Every interaction on one code base; {name: seconds or [seconds, ...]}. A step that fails
    is reported (with a screenshot in the work folder) and the others still run."""
    class_word, image_word, _ = words
    proc, url = start_server(code, work, tag)
    out: dict = {}

    def step(name: str, action, page) -> None:
        try:
            first = len(TIMINGS)
            out[name] = action()
            shown = statistics.median(out[name]) if isinstance(out[name], list) else out[name]
            harness = [action_s for _, action_s in TIMINGS[first:]]
            if harness:
                out[f"{name} [from the harness's first action]"] = harness if len(harness) > 1 else harness[0]
            print(f"  {tag}: {name:52s} {shown:8.2f} s", flush=True)
        except Exception as exc:  # a benchmark reports a failed step and goes on
            out[name] = None
            print(f"  {tag}: {name}: FAILED ({type(exc).__name__}: {str(exc)[:200]})", flush=True)
            page.screenshot(path=str(work / f"{tag}-{len(out)}.png"), full_page=True)
            idle(page)

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.goto(f"{url}/Find_errors")
            idle(page)
            sidebar = page.locator("[data-testid='stSidebar']")

            def choose_set():
                sidebar.get_by_role("combobox", name="Image set").click()
                page.get_by_role("option", name="Folder, list or CSV on the server").click()

            timed_run(page, choose_set)
            box = sidebar.locator(".st-key-set_path input")

            def open_set():
                seconds = timed_run(page, lambda: (box.fill(str(list_path)), box.press("Enter")))
                page.get_by_role("button", name="Explain").first.wait_for(timeout=600_000)
                return seconds

            step("open the set (first time: list, scan JSON)", open_set, page)
            pager = page.locator(".st-key-gallery_page input")
            step(
                "next page",
                lambda: [timed_run(page, lambda n=n: (pager.fill(str(n)), pager.press("Enter"))) for n in (2, 3, 4, 5)],
                page,
            )
            query = page.locator(".st-key-filter_query input")
            step(
                "search class names",
                lambda: timed_run(page, lambda: (query.fill(class_word), query.press("Enter"))),
                page,
            )
            step("clear the search", lambda: timed_run(page, lambda: (query.fill(""), query.press("Enter"))), page)

            def true_filter():
                # Opening the menu and moving to an option is the browser's alone (no script
                # run); the interaction timed is the choice: from Enter to the end of its run.
                # Each repeat picks another class (the first, second, ... below "any").
                seconds = []
                for k in range(1, REPEAT + 1):
                    page.locator(".st-key-filter_true").click()
                    for _ in range(k + 1):
                        page.keyboard.press("ArrowDown")
                    page.wait_for_timeout(300)
                    seconds.append(timed_run(page, lambda: page.keyboard.press("Enter"), timeout_ms=120_000))
                return seconds

            step("true-class filter", true_filter, page)

            def confusion_row():
                # A row is drawn on a canvas: click a row's selection marker (the page applies it
                # as the filter and reruns once more: the first run is timed). Each repeat clicks
                # the next row, which replaces the selection.
                grid = page.locator("[data-testid='stDataFrame']").first
                seconds = []
                for row in range(REPEAT):
                    grid.scroll_into_view_if_needed()
                    grid.hover()  # the grid draws its row markers once the mouse is over it
                    page.wait_for_timeout(300)
                    grid_box = grid.bounding_box()
                    boxes = [page.get_by_role("combobox", name=n) for n in ("True class", "Predicted class")]
                    before = [box.input_value() for box in boxes]
                    x, y = grid_box["x"] + 18, grid_box["y"] + 35 + 17 + 35 * row
                    seconds.append(timed_run(page, lambda x=x, y=y: page.mouse.click(x, y), timeout_ms=120_000))
                    page.wait_for_timeout(1500)
                    idle(page)
                    if [box.input_value() for box in boxes] == before:
                        raise RuntimeError(
                            f"the click selected no confusion row ({row}: the predicted-class box is unchanged)"
                        )
                return seconds

            step("confusion row", confusion_row, page)

            def open_explain():
                # The sidebar's link keeps the session (and so the chosen set) on both code bases;
                # between repeats the sidebar's Find errors link goes back (not timed).
                seconds = []
                for k in range(REPEAT):
                    if k:
                        sidebar.get_by_test_id("stPageLink-NavLink").filter(has_text="Find errors").click()
                        page.get_by_role("button", name="Explain").first.wait_for(timeout=300_000)
                        idle(page)
                        page.wait_for_timeout(1500)
                    link = sidebar.get_by_test_id("stPageLink-NavLink").filter(has_text="Explain")
                    seconds.append(timed_run(page, link.click, timeout_ms=300_000))
                    page.get_by_role("heading", name="Explain").first.wait_for(timeout=300_000)
                    page.locator(".st-key-_item").wait_for(timeout=300_000)
                    idle(page)
                    page.wait_for_timeout(1000)
                return seconds

            step("open the Explain page", open_explain, page)
            step("Explain picker: type a name to a matching option", lambda: pick(page, image_word), page)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)
    return out


SHOWN = """(word) => {
  const hit = [...document.querySelectorAll('[role=option]')].some(o => o.textContent.includes(word));
  if (hit && window.__shown === null) window.__shown = performance.now();
  return hit;
}"""


def pick(page, word: str) -> float:
    """Seconds from typing ``word`` to a matching option shown in the Image menu: where a search
    box feeds the menu, the run that its Enter starts plus opening the menu (from the press on
    the menu to the option drawn), both on the browser's clock; the fixed pauses that wait for
    the page to settle between the two are not counted."""
    search = page.locator(".st-key-_item_query input")
    if search.count():  # a search box feeds the menu: type, let the page rerun, open the menu
        seconds = timed_run(page, lambda: (search.fill(word), search.press("Enter")), timeout_ms=300_000)
        page.evaluate(OBSERVER)
        page.evaluate("window.__shown = null")
        page.locator(".st-key-_item").click()
        page.wait_for_function(SHOWN, arg=word, timeout=300_000, polling="raf")
        seconds += page.evaluate("window.__shown - window.__input") / 1000
    else:  # one menu over every image (older code): open it and type into it, harness clock
        start = time.perf_counter()
        page.locator(".st-key-_item").click()
        page.keyboard.type(word)
        page.get_by_role("option").filter(has_text=word).first.wait_for(timeout=300_000)
        seconds = time.perf_counter() - start
    page.keyboard.press("Escape")
    return seconds


def summary(results: dict) -> dict:
    flat = {}
    for name, value in results.items():
        if value is None:
            flat[name] = float("nan")
        else:
            flat[name] = round(statistics.median(value), 3) if isinstance(value, list) else round(value, 3)
    return flat


def main() -> None:
    global REPEAT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--before", type=Path, help="another checkout to measure the same way (e.g. /work/main)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="samples of the filter, a confusion row, Explain")
    parser.add_argument("--rounds", type=int, default=1, help="with --before: alternate the two code bases this often")
    args = parser.parse_args()
    REPEAT = max(1, args.repeat)
    work = Path(tempfile.mkdtemp(prefix="lima-bench-errors-"))
    try:
        list_path, _ = make_list(work, args.items)
        words = seed_scan(list_path, work / "scans")
        print(f"search words: class {words[0]!r}, image {words[1]!r}", flush=True)
        report = {"items": args.items, "load_before": os.getloadavg()}
        codes = [("after", ROOT)] + ([("before", args.before)] if args.before else [])
        merged: dict[str, dict] = {tag: {} for tag, _ in codes}
        for round_no in range(max(1, args.rounds)):  # alternated, so the machine's drift hits both
            for tag, code in codes:
                print(f"-- {tag}: {code} (round {round_no + 1})", flush=True)
                for name, value in bench(code, work, f"{tag}{round_no}", list_path, words).items():
                    samples = merged[tag].setdefault(name, [])
                    if value is not None:
                        samples.extend(value if isinstance(value, list) else [value])
        for tag, _ in codes:
            results = {name: (samples or None) for name, samples in merged[tag].items()}
            report[tag] = {"raw": results, "median": summary(results)}
            print(f"== {tag}: medians", flush=True)
            for name, value in summary(results).items():
                print(f"{name:55s} {value:8.2f} s", flush=True)
        report["load_after"] = os.getloadavg()
        print(f"load average before/after: {report['load_before']} / {report['load_after']}")
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
