"""The README and the docs say only what is true of the tree: every `python -m src.<entry>` command of
their bash blocks composes with Hydra (a renamed key, group or recipe fails here), every other
command names a module, flag or make target that exists, every relative link and every path under
src/, conf/, tests/ or notebooks/ exists, and the measured figures come from result files through
the renderer (`docs/hooks/results.py`), never from prose. The docs build itself (`mkdocs build
--strict`) is part of `make test`."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tests.helpers import docs_results_hook

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: Entry points with a Hydra config of the same name in conf/.
HYDRA_ENTRIES = ("train", "eval", "predict", "export", "convert", "check_data")
#: Hydra flags that are not overrides (the value of --cfg / --package follows it).
HYDRA_FLAGS = {"-m", "--multirun", "--help", "--hydra-help", "--resolve", "--info"}
HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p"}
README_MAX_LINES = 160
MEASUREMENT = re.compile(r"[0-9]+ min [0-9]+ s|AP [0-9]\.[0-9]{3}")


results = docs_results_hook()


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# ------------------------------------------------------------------------------- commands in bash blocks

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.S | re.M)


def bash_commands(path: Path) -> list[list[str]]:
    """The commands of a page's bash blocks, as argument lists (continuations joined, comments dropped)."""
    commands = []
    for lang, body in FENCE.findall(path.read_text(encoding="utf-8")):
        if lang not in ("bash", "sh", "shell"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            args = shlex.split(line, comments=True)
            if args:
                commands.append(args)
    return commands


def python_module(args: list[str]) -> tuple[str, list[str]] | None:
    """(module, its arguments) of a `python -m module ...` command, else None."""
    if len(args) >= 3 and Path(args[0]).name.startswith("python") and args[1] == "-m":
        return args[2], args[3:]
    return None


def _cases() -> list[tuple[str, list[str]]]:
    """(where, argument list) of every distinct command of the pages (the first page that shows it)."""
    cases: dict[tuple[str, ...], str] = {}
    for page in PAGES:
        for args in bash_commands(page):
            key = tuple(Path(args[0]).name if i == 0 else a for i, a in enumerate(args))
            cases.setdefault(key, f"{_rel(page)}: {' '.join(args)}")
    return [(label, list(args)) for args, label in cases.items()]


CASES = _cases()


def _variants(overrides: list[str]) -> list[list[str]]:
    """One override list per value of each sweep (the first value of every other sweep)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for text, override in zip(overrides, parsed):
        if override.is_sweep_override():
            key = text.split("=", 1)[0]
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:
            choices.append([text])
    firsts = [c[0] for c in choices]
    variants = [firsts]
    for i, c in enumerate(choices):
        variants += [firsts[:i] + [value] + firsts[i + 1 :] for value in c[1:]]
    return variants


def _placeholders(arg: str) -> str:
    """``key=...`` (a value the reader fills in) composed as a dummy path."""
    return re.sub(r"=\.\.\.$", "=/placeholder/path", arg)


def test_pages_have_commands():
    """The parser finds the commands (a broken fence regex would make the next test vacuous)."""
    entries = {python_module(args)[0] for _, args in CASES if python_module(args)}
    assert {f"src.{e}" for e in HYDRA_ENTRIES} <= entries


@pytest.fixture(scope="module")
def hydra_conf():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        yield


@pytest.mark.parametrize(("label", "args"), CASES, ids=[c[0][:120] for c in CASES])
def test_command(label: str, args: list[str], hydra_conf) -> None:
    if args[0] == "make":
        makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
        for target in args[1:]:
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"{label}: no make target {target!r}"
        return
    found = python_module(args)
    if found is None:
        return  # other tools (pip, wandb): not ours to check
    module, rest = found
    entry = module.removeprefix("src.")
    if module.startswith("src.") and entry in HYDRA_ENTRIES:
        overrides, skip = [], False
        for a in rest:
            if not skip and a not in HYDRA_FLAGS and a not in HYDRA_FLAGS_WITH_VALUE:
                overrides.append(_placeholders(a))
            skip = a in HYDRA_FLAGS_WITH_VALUE
        assert not [a for a in overrides if a.startswith("-")], f"{label}: a flag this test does not know"
        for variant in _variants(overrides):
            _check_overrides(entry, variant, label)
        return
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"{label}: no module {module}"
    flags = [a.split("=", 1)[0] for a in rest if a.startswith("--")]
    if flags:
        usage = _help(module)
        for flag in flags:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", usage), f"{label}: {module} has no option {flag}"


def _is_group(key: str) -> bool:
    """A config group (model, data, hydra/launcher, ...), as opposed to a key of the config."""
    return "." not in key and ((ROOT / "conf" / key).is_dir() or key.startswith("hydra/"))


@functools.cache
def _composed(entry: str, groups: tuple[str, ...], with_hydra: bool) -> dict:
    """The composed config as plain containers, interpolations unresolved."""
    # the hydra node only where an override needs it (composing it costs about half again)
    cfg = compose(config_name=entry, overrides=list(groups), return_hydra_config=with_hydra)
    return OmegaConf.to_container(cfg, resolve=False)


def _has_key(node: object, key: str) -> bool:
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _check_overrides(entry: str, overrides: list[str], label: str) -> None:
    """What Hydra checks when it composes ``overrides``: the groups and options exist (composed, once
    per distinct choice of groups), and every key set without ``+`` exists in the composed config."""
    groups = tuple(o for o in overrides if _is_group(o.split("=", 1)[0].lstrip("+~")))
    with_hydra = any(o.lstrip("+~").startswith("hydra") for o in overrides)
    cfg = _composed(entry, groups, with_hydra)
    for override in overrides:
        key = override.split("=", 1)[0]
        if override in groups or key.startswith(("+", "~")):
            continue
        assert _has_key(cfg, key), f"{label}: python -m src.{entry} has no key {key!r}"


@functools.cache
def _help(module: str) -> str:
    """The ``--help`` text of a command-line module (argparse)."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"python -m {module} --help failed:\n{done.stderr[-2000:]}"
    return done.stdout


# ---------------------------------------------------------------------------------------- links, paths

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w./-])((?:src|conf|tests|notebooks)/[\w./{},<>*-]*)")
DOTTED = re.compile(r"`(src(?:\.\w+)+)`")


def _expand(path: str) -> list[str]:
    """Brace alternatives as the shell expands them: a_{1,2}.yaml -> a_1.yaml, a_2.yaml."""
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    return [x for alt in match.group(1).split(",") for x in _expand(path[: match.start()] + alt + path[match.end() :])]


def _without_fences(text: str) -> str:
    return FENCE.sub("", text)


@pytest.mark.parametrize("page", PAGES, ids=[_rel(p) for p in PAGES])
def test_links_and_paths_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = []
    for target in LINK.findall(_without_fences(text)):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file = target.split("#", 1)[0]
        if not (page.parent / file).exists():
            missing.append(f"link {target}")
    for raw in PATH.findall(text):
        if "<" in raw or "*" in raw:
            raw = re.split(r"[<*]", raw, maxsplit=1)[0]
        for path in _expand(raw.rstrip(".,")):
            if not (ROOT / path).exists():
                missing.append(f"path {path}")
    for dotted in DOTTED.findall(_without_fences(text)):
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            base = ROOT.joinpath(*parts[:n])
            file = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
            if file.is_file():
                break
        else:
            missing.append(f"module {dotted}")
            continue
        # the rest names something the module defines or imports
        if parts[n:] and not re.search(rf"\b{parts[n]}\b", file.read_text(encoding="utf-8")):
            missing.append(f"name {dotted}")
    assert not missing, f"{_rel(page)} refers to what does not exist: {missing}"


# ------------------------------------------------------------------------------- measured figures


def test_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the rest belongs in docs/"


def test_no_hand_typed_measurement() -> None:
    files = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "conf").rglob("*.yaml")]
    files += [*(ROOT / "src").rglob("*.py")]
    found = [
        f"{_rel(f)}:{n}: {line.strip()}"
        for f in files
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if MEASUREMENT.search(line)
    ]
    assert not found, "measured figures belong in result files, rendered into the docs:\n" + "\n".join(found)


def test_each_results_marker_appears_once() -> None:
    pages = [p for p in PAGES if p.is_relative_to(ROOT / "docs")]
    for name in ("quickstarts", "benchmarks", "tracking_video", "steady_speed", "absolute_video"):
        where = [_rel(p) for p in pages for _ in re.finditer(rf"<!--\s*results:{name}\s*-->", p.read_text())]
        assert len(where) == 1, f"results:{name} appears in {where or 'no page'}"


def _quickstart(**changes) -> dict:
    record = {
        "experiment": "quickstart",
        "date": "2030-01-02",
        "command": "python -m src.train experiment=quickstart",
        "machine": {"cpu": "Test CPU 9000", "cores": 2, "threads": 2, "flags": ["avx2"], "gpu": None},
        "fast_path": {"precision": "32-true", "channels_last": True, "reason": "test"},
        "precision": "32-true",
        "channels_last": True,
        "wall_s": 487.4,
        "phases_s": {"startup": 6.0, "data": 20.0, "train": 440.0, "final_eval": 21.4},
        "epochs": 9,
        "metrics": {"val/AP": 0.61234},
        "headline": {"key": "val/AP", "value": 0.61234, "mode": "max"},
        "git_commit": "abc1234",
        "load": {"start": [1.5, 1.2, 1.0], "end": [2.25, 1.8, 1.2]},
        "torch": "2.13.0",
    }
    record.update(changes)
    return record


def test_quickstart_table_follows_the_results_files(tmp_path: Path) -> None:
    folder = tmp_path / results.QUICKSTARTS
    page = "before\n<!-- results:quickstarts -->\nafter\n"
    empty = results.render_markers(page, tmp_path)
    assert "No quickstart results file" in empty and "<!--" not in empty
    folder.mkdir(parents=True)
    (folder / "quickstart-test-cpu-fp32-2030-01-02.json").write_text(json.dumps(_quickstart()))
    first = results.render_markers(page, tmp_path)
    assert "Test CPU 9000" in first and "val/AP 0.612" in first and "8 min 07 s" in first
    assert "2030-01-02" in first and "32-true, channels_last" in first and "1.5 / 2.2" in first
    assert first.startswith("before\n") and first.endswith("after\n")
    # a new run on another machine adds a row under the same experiment; a changed file changes its row
    other = _quickstart(
        machine={"cpu": "Other CPU", "cores": 4, "threads": 4, "flags": [], "gpu": None},
        headline={"key": "val/AP", "value": 0.5, "mode": "max"},
    )
    (folder / "quickstart-other-fp32-2030-01-03.json").write_text(json.dumps({**other, "date": "2030-01-03"}))
    (folder / "quickstart-test-cpu-fp32-2030-01-02.json").write_text(
        json.dumps(_quickstart(wall_s=301.0, headline={"key": "val/AP", "value": 0.655, "mode": "max"}))
    )
    second = results.render_markers(page, tmp_path)
    assert second != first
    assert "Other CPU" in second and "val/AP 0.655" in second and "5 min 01 s" in second
    assert "val/AP 0.612" not in second
    assert second.count("#### `experiment=quickstart`") == 1
    # a run that starts from another quickstart's checkpoint shows both times and their sum
    staged = _quickstart(experiment="quickstart_two", wall_s=300.0)
    staged["pretraining"] = {"experiment": "quickstart_one", "wall_s": 200.0, "checkpoint": "x/last.ckpt"}
    (folder / "quickstart_two-test-cpu-fp32-2030-01-02.json").write_text(json.dumps(staged))
    third = results.render_markers(page, tmp_path)
    assert "5 min 00 s + 3 min 20 s (quickstart_one) = 8 min 20 s" in third


def test_benchmark_section_follows_the_report(tmp_path: Path) -> None:
    reports = sorted((ROOT / results.BENCHMARKS).glob("*.json"))
    if not reports:
        pytest.skip("no make bench report in benchmarks/results")
    data = json.loads(reports[0].read_text())
    folder = tmp_path / results.BENCHMARKS
    folder.mkdir(parents=True)
    page = "<!-- results:benchmarks -->"
    (folder / "machine-a.json").write_text(json.dumps(data))
    first = results.render_markers(page, tmp_path)
    family = next(iter(data["families"]))
    assert data["date"] in first and family in first
    data["families"][family]["train_auto"]["images_per_s"] = 12345.678
    data["date"] = "2031-05-06"
    (folder / "machine-a.json").write_text(json.dumps(data))
    second = results.render_markers(page, tmp_path)
    assert "12345.68" in second and "2031-05-06" in second and second != first


def test_bad_results_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / results.QUICKSTARTS
    folder.mkdir(parents=True)
    (folder / "broken.json").write_text(json.dumps({"experiment": "quickstart"}))
    with pytest.raises(results.ResultsFileError, match=r"broken\.json: missing key 'date'"):
        results.render_markers("<!-- results:quickstarts -->", tmp_path)
    with pytest.raises(results.ResultsFileError, match="unknown results marker"):
        results.render_markers("<!-- results:nothing -->", tmp_path)


def _tracking_record(**changes) -> dict:
    run = {"mota": 0.8125, "id_switches": 3, "misses": 10, "false_positives": 2}
    groups = {"never_cross": 1, "never_cross_in_view": 0, "cross": 2, "reenter": 1}
    record = {
        "date": "2030-01-02",
        "machine": {"cpu": "Test CPU 9000", "cores": 2, "threads": 2},
        "command": "python -m benchmarks.tracking_video --pose-ckpt a.ckpt",
        "boxes": "truth",
        "video": {"frames": 80, "fps": 20.0, "ground_truth_instances": 300, "reentry_gap_frames": 19},
        "oks_threshold": 0.5,
        "tracking": {n: {**run, "id_switches_by_group": groups} for n in ("raw", "smoothed")},
        "jitter_px_per_frame2": {"raw": 4.25, "smoothed": 1.5, "ground_truth": 1.0, "joint_triples": 4000},
        "ap": {"raw": 0.7, "smoothed": 0.695},
        "aims": {
            "non_crossing_id_switches": {"aim": 0, "measured": 1, "met": False},
            "jitter_ratio": {"aim": 0.5, "measured": 0.353, "met": True},
            "ap_cost": {"aim": 0.01, "measured": 0.005, "met": True},
        },
    }
    record.update(changes)
    return record


def test_tracking_video_section_follows_the_results_files(tmp_path: Path) -> None:
    folder = tmp_path / results.TRACKING_VIDEO
    page = "<!-- results:tracking_video -->"
    assert "No tracking video results" in results.render_markers(page, tmp_path)
    folder.mkdir(parents=True)
    (folder / "truth-test-cpu-2030-01-02.json").write_text(json.dumps(_tracking_record()))
    first = results.render_markers(page, tmp_path)
    assert "#### ground-truth boxes, 2030-01-02" in first and "Test CPU 9000" in first
    assert "| raw | 0.812 | 3 | 1 | 0 | 2 | 1 | 10 | 2 | 4.25 | 0.700 |" in first
    assert "| ground truth |" in first and "| 1.00 |" in first
    assert "never cross 1 (aim 0: not met)" in first and "jitter 0.35 (aim at most 0.5: met)" in first
    assert "`python -m benchmarks.tracking_video --pose-ckpt a.ckpt`" in first
    changed = _tracking_record(boxes="detector", ap={"raw": 0.7, "smoothed": 0.6875}, overrides=["smoothing.beta=0.5"])
    (folder / "detector-test-cpu-2030-01-02.json").write_text(json.dumps(changed))
    second = results.render_markers(page, tmp_path)
    assert "#### boxes of the bottom-up detector, 2030-01-02" in second and "0.688" in second
    assert "Options of both runs: `smoothing.beta=0.5`." in second
    (folder / "broken.json").write_text(json.dumps({"date": "2030-01-02"}))
    with pytest.raises(results.ResultsFileError, match=r"broken\.json: missing key 'machine'"):
        results.render_markers(page, tmp_path)


def test_absolute_video_section_follows_the_results_files(tmp_path: Path) -> None:
    folder = tmp_path / results.ABSOLUTE_VIDEO
    page = "<!-- results:absolute_video -->"
    assert "No absolute video results" in results.render_markers(page, tmp_path)
    folder.mkdir(parents=True)
    record = {
        "date": "2030-01-02",
        "machine": {"cpu": "Test CPU 9000", "cores": 2, "threads": 2},
        "command": "python -m benchmarks.absolute_video --pose-ckpt p.ckpt --root-ckpt r.ckpt",
        "pose_ckpt": "p.ckpt",
        "root_ckpt": "r.ckpt",
        "frames_in_order": 2,
        "per_frame": [{"in_order": True}, {"in_order": True}, {"in_order": False}],
        "mean_abs_depth_error_mm": [120.25, 340.0],
        "true_depth_range_mm": [[2480.0, 2520.0], [4400.0, 4700.0]],
    }
    (folder / "test-cpu-2030-01-02.json").write_text(json.dumps(record))
    text = results.render_markers(page, tmp_path)
    assert "**2 of 3 frames**" in text and "Test CPU 9000" in text
    assert "| 1 | 2.48-2.52 | 120.2 |" in text and "| 2 | 4.40-4.70 | 340.0 |" in text
    assert "`python -m benchmarks.absolute_video --pose-ckpt p.ckpt --root-ckpt r.ckpt`" in text
    (folder / "broken.json").write_text(json.dumps({"date": "2030-01-02", "machine": {}}))
    with pytest.raises(results.ResultsFileError, match=r"broken\.json: missing key 'frames_in_order'"):
        results.render_markers(page, tmp_path)


def test_steady_speed_section_follows_the_results_files(tmp_path: Path) -> None:
    folder = tmp_path / results.STEADY
    page = "<!-- results:steady_speed -->"
    assert "No steady video speed results" in results.render_markers(page, tmp_path)
    folder.mkdir(parents=True)
    step = {"people": 10, "frames": 400, "aim_ms": 1.0, "aim_met": True}
    step |= {
        k: {"median_ms": v, "p90_ms": 2 * v}
        for k, v in (("tracking_and_smoothing", 0.25), ("tracking", 0.125), ("smoothing", 0.0625))
    }
    record = {
        "date": "2030-01-02",
        "machine": {"cpu": "Test CPU 9000"},
        "step": step,
        "command": "python -m benchmarks.bench_steady",
    }
    (folder / "test-cpu-2030-01-02.json").write_text(json.dumps(record))
    first = results.render_markers(page, tmp_path)
    assert "Tracking + smoothing of 10 people: 0.250 ms per frame" in first and "aim under 1 ms: met" in first
    assert "Video pipeline" not in first
    record["pipeline"] = {
        "pose_model": "hrnet_w16_small", "detector_model": "higherhrnet_w16_small", "frames": 80,
        "batch_size": 8, "threads": 2, "frames_per_s": 1.5, "video": {"size": [320, 256]},
        "stage_share": {"decode": 0.01, "detector": 0.6, "pose": 0.35},
        "stage_ms_per_frame": {"decode": 6.5, "detector": 400.0, "pose": 233.25},
    }  # fmt: skip
    (folder / "test-cpu-2030-01-02.json").write_text(json.dumps(record))
    second = results.render_markers(page, tmp_path)
    assert "hrnet_w16_small on higherhrnet_w16_small boxes; 80 frames of 320x256" in second
    assert "1.50 frames/s" in second and "| detector | 400.00 | 60.0% |" in second
