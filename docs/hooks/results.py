"""Measured figures in the docs, rendered from the result files the runs wrote.

A page holds a marker, and the built page holds a table made from the files present at build time:

    <!-- results:quickstarts -->   benchmarks/results/quickstarts/*.json, one row per file, grouped by experiment
    <!-- results:benchmarks -->    benchmarks/results/*.json (`make bench`), one section per machine and date
    <!-- results:weights -->       src/hub/known_weights.yaml, the registry of known weight files
    <!-- results:tracking_video --> benchmarks/results/tracking_video/*.json (`benchmarks.tracking_video`)
    <!-- results:steady_speed -->  benchmarks/results/steady/*.json (`benchmarks.bench_steady`)
    <!-- results:absolute_video --> benchmarks/results/absolute_video/*.json (`benchmarks.absolute_video`)

Nothing here knows a figure: a new results file changes the built page without editing prose. MkDocs
loads this module as a hook (``hooks:`` in mkdocs.yml); the functions also work alone, on any folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

#: Folders relative to the repository root (the folder of mkdocs.yml).
BENCHMARKS = Path("benchmarks/results")
QUICKSTARTS = BENCHMARKS / "quickstarts"
WEIGHTS = Path("src/hub/known_weights.yaml")
TRACKING_VIDEO = BENCHMARKS / "tracking_video"
STEADY = BENCHMARKS / "steady"
ABSOLUTE_VIDEO = BENCHMARKS / "absolute_video"
#: Where a benchmark's PNG is published in the site (pages link to it from the site root).
IMAGE_DIR = "results"

MARKER = re.compile(r"<!--\s*results:([a-z_]+)\s*-->")


class ResultsFileError(ValueError):
    """A results file that cannot be rendered; the message names the file and the problem."""


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ResultsFileError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(data, dict):
        raise ResultsFileError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _need(data: dict[str, Any], key: str, path: Path) -> Any:
    if key not in data:
        raise ResultsFileError(f"{path}: missing key {key!r}")
    return data[key]


def _cell(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _duration(seconds: float) -> str:
    """Wall time as minutes and seconds (seconds alone under a minute)."""
    total = int(round(float(seconds)))
    minutes, secs = divmod(total, 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _number(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.{digits}f}"


# ----------------------------------------------------------------------------------------- quickstarts


def load_quickstarts(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every quickstart results file of ``folder`` (sorted by experiment, date, file name)."""
    folder = Path(folder)
    found = [(p, _read(p)) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    for path, data in found:
        for key in ("experiment", "date", "machine", "precision", "wall_s", "headline"):
            _need(data, key, path)
    return sorted(found, key=lambda item: (str(item[1]["experiment"]), str(item[1]["date"]), item[0].name))


def _machine(machine: dict[str, Any]) -> str:
    cpu = machine.get("cpu") or "unknown CPU"
    cores, threads = machine.get("cores"), machine.get("threads")
    text = cpu + (f", {cores} cores" if cores else "") + (f", {threads} threads" if threads else "")
    return f"{machine['gpu']} ({text})" if machine.get("gpu") else text


def _cpu_flags(machine: dict[str, Any]) -> str:
    flags = machine.get("flags") or []
    if isinstance(flags, dict):
        flags = [name for name, present in flags.items() if present]
    return ", ".join(flags) or "none listed"


def _path(data: dict[str, Any]) -> str:
    memory = "channels_last" if data.get("channels_last") else "NCHW"
    return f"{data['precision']}, {memory}"


def _headline(data: dict[str, Any], path: Path) -> str:
    head = data["headline"]
    if not isinstance(head, dict):
        raise ResultsFileError(f"{path}: 'headline' must be an object with key, value and mode")
    key, value = _need(head, "key", path), _need(head, "value", path)
    better = {"max": "higher is better", "min": "lower is better"}.get(head.get("mode"), "")
    text = f"{key} {_number(value)}" + (f" ({better})" if better else "")
    baseline = data.get("baseline")
    if isinstance(baseline, dict) and "value" in baseline:  # the same metric without a network, same split
        text += f"; baseline ({_cell(baseline.get('method', 'no network'))}) {_number(baseline['value'])}"
    return text


def _phases(data: dict[str, Any]) -> str:
    phases = data.get("phases_s") or {}
    return ", ".join(f"{name.replace('_', ' ')} {_duration(s)}" for name, s in phases.items()) or "-"


def _load(data: dict[str, Any]) -> str:
    """The 1-minute load average at start and end (other jobs sharing the cores slow a run down)."""
    load = data.get("load") or {}
    start, end = load.get("start"), load.get("end")
    if not start or not end:
        return "-"
    return f"{_number(start[0], 1)} / {_number(end[0], 1)}"


def _wall(data: dict[str, Any]) -> str:
    """The run's wall time; for a run that starts from another quickstart's checkpoint (RTMPose
    from the CSPNeXt one) also that run's time and the sum, the time the whole recipe takes."""
    wall = _duration(data["wall_s"])
    before = data.get("pretraining")
    if not isinstance(before, dict):
        return wall
    if not isinstance(before.get("wall_s"), (int, float)):
        return f"{wall} (+ pretraining, not recorded)"
    name = before.get("experiment") or "pretraining"
    return f"{wall} + {_duration(before['wall_s'])} ({name}) = {_duration(data['wall_s'] + before['wall_s'])}"


def render_quickstarts(folder: Path) -> str:
    """Markdown: per experiment, a table with one row per results file (machine, path, date)."""
    runs = load_quickstarts(folder)
    if not runs:
        return (
            f"*No quickstart results file in `{Path(folder).as_posix()}/` yet.* A quickstart run writes one there "
            "(`python -m src.train experiment=quickstart`); rebuild the docs to show it."
        )
    lines: list[str] = []
    experiments: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for path, data in runs:
        experiments.setdefault(str(data["experiment"]), []).append((path, data))
    header = ["date", "machine", "CPU flags", "path", "wall time", "phases", "load", "epochs", "headline", "file"]
    for experiment, items in experiments.items():
        lines += ["", f"#### `experiment={experiment}`", ""]
        rows = [
            [
                data["date"],
                _machine(data["machine"]),
                _cpu_flags(data["machine"]),
                _path(data),
                _wall(data),
                _phases(data),
                _load(data),
                data.get("epochs", "-"),
                _headline(data, path),
                f"`{path.name}`",
            ]
            for path, data in items
        ]
        lines += _table(header, rows)
        commands = sorted({str(data["command"]) for _, data in items if data.get("command")})
        if commands:
            lines += ["", "Command" + ("s" if len(commands) > 1 else "") + ": " + "; ".join(f"`{c}`" for c in commands)]
    return "\n".join(lines).strip() + "\n"


# ------------------------------------------------------------------------------------------ benchmarks


def load_benchmarks(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every `make bench` report of ``folder`` (sorted by date, then file name)."""
    folder = Path(folder)
    found = [(p, _read(p)) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    for path, data in found:
        for key in ("date", "machine", "families"):
            _need(data, key, path)
    return sorted(found, key=lambda item: (str(item[1]["date"]), item[0].name))


def _bench_machine(m: dict[str, Any]) -> str:
    flags = m.get("flags") or {}
    names = [k for k, v in flags.items() if v] if isinstance(flags, dict) else list(flags)
    text = m.get("cpu", "unknown CPU")
    if m.get("threads"):
        text += f", {m['threads']} threads" + (f" of {m['logical_cpus']}" if m.get("logical_cpus") else "")
    text += f"; instruction sets: {', '.join(names) or 'none of note'}"
    if m.get("gpu"):
        text = f"{m['gpu']} ({text})"
    if m.get("torch"):
        text += f"; torch {m['torch']}"
    return text


def _family_rows(families: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for name, f in families.items():
        ref, auto, inf = f.get("train_reference", {}), f.get("train_auto", {}), f.get("infer_auto", {})
        size = "x".join(str(v) for v in f.get("input_hw", [])) or "-"
        rows.append(
            [
                name,
                size,
                _number(ref.get("images_per_s", "-"), 2),
                f"{_number(auto.get('images_per_s', '-'), 2)} ({auto.get('precision', '?')}, "
                f"{'channels_last' if auto.get('channels_last') else 'NCHW'})",
                f"{_number(f.get('train_ratio', '-'), 2)}x",
                f"{_number(inf.get('flip_off_images_per_s', '-'), 1)} / "
                f"{_number(inf.get('flip_on_images_per_s', '-'), 1)}",
            ]
        )
    return rows


#: Inference backends of a report (`benchmarks.bench_export`), in the order they are shown.
BACKEND_NAMES = {
    "pytorch_reference": "PyTorch fp32 NCHW (reference)",
    "pytorch_auto": "PyTorch automatic path",
    "onnxruntime": "onnxruntime",
}


def _backend_section(backends: dict[str, Any]) -> list[str]:
    """The inference-backend table (latency at the smallest batch, images/s and peak share at the
    largest; the share of the bf16 peak for a mixed-precision path), the ratios of each pair of
    models per backend, and the published figures, labelled."""
    models, batches = backends.get("models") or {}, backends.get("batches") or []
    if not models or not batches:
        return []
    small, large = str(min(batches)), str(max(batches))
    rows = []
    for name, m in models.items():
        for backend, label in BACKEND_NAMES.items():
            lat = (m.get("batches") or {}).get(small, {}).get(backend, {})
            thr = (m.get("batches") or {}).get(large, {}).get(backend, {})
            if backend == "pytorch_auto" and (m.get("pytorch_auto") or {}).get(large):
                auto = m["pytorch_auto"][large]
                label += f" ({auto.get('precision')}, {'channels_last' if auto.get('channels_last') else 'NCHW'})"
            precision = "bf16" if "pct_of_bf16_peak" in thr else "fp32"
            share = thr.get(f"pct_of_{precision}_peak")
            rows.append(
                [
                    m.get("label", name),
                    "x".join(str(v) for v in m.get("input_hw", [])) or "-",
                    f"{_number(m.get('forward_gflops_per_image'), 2)} ({_number(m.get('gmacs_per_image'), 2)})",
                    label,
                    _number(lat.get("latency_ms", "-"), 2),
                    _number(thr.get("images_per_s", "-"), 1),
                    "-" if share is None else f"{_number(share, 1)}% {precision}",
                ]
            )
    header = ["model", "input (h x w)", "GFLOPs (GMACs)", "backend", f"ms/image, batch {small}"]
    header += [f"images/s, batch {large}", "share of peak"]
    lines = [
        "",
        "Inference backends, all calls of one batch size alternating in one run (random weights; FLOPs counted "
        "on the meta device, 2 per multiply-add; mmpose's published FLOPs are multiply-adds):",
        "",
        *_table(header, rows),
    ]
    for pair, r in (backends.get("ratios") or {}).items():
        first, second = (models.get(n, {}).get("label", n) for n in pair.split("/"))
        per_backend = (r.get("batches") or {}).get(large) or {}
        text = ", ".join(f"{BACKEND_NAMES.get(b, b)} {_number(v, 2)}x" for b, v in per_backend.items())
        aim = f" (aim: at least {_number(r['aim'], 0)}x)" if r.get("aim") else ""
        lines += ["", f"{first} / {second} images/s at batch {large}: {text}{aim}."]
    for name, p in (backends.get("published") or {}).items():
        lines += [
            "",
            f"Published, not measured here: {models.get(name, {}).get('label', name)} "
            f"{_number(p.get('published_latency_ms'), 2)} ms ({p.get('source')}).",
        ]
    return lines


def _data_rows(data: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for paradigm in ("topdown", "bottomup", "pose3d"):
        d = data.get(paradigm)
        if not d:
            continue
        reference = d.get("reference_samples_per_s", d.get("full_decode_samples_per_s"))
        rows.append([paradigm, _number(reference, 1), _number(d.get("samples_per_s"), 1)])
    return rows


def render_benchmark(path: Path, data: dict[str, Any], image_dir: str = IMAGE_DIR) -> str:
    """Markdown for one `make bench` report: the machine, training, inference (with the inference
    backends where the report has them), data and grouping."""
    lines = [f"### {data['machine'].get('gpu') or data['machine'].get('cpu', path.stem)}, {data['date']}", ""]
    lines.append(f"Machine: {_bench_machine(data['machine'])}. File: `{BENCHMARKS.as_posix()}/{path.name}`.")
    auto = data.get("automatic_path") or {}
    if auto:
        memory = "channels_last" if auto.get("channels_last") else "NCHW"
        reason = auto.get("reason", "no reason recorded")
        lines += ["", f"Automatic path: {auto.get('precision')}, {memory} ({reason})."]
    peak = data.get("peak") or {}
    if peak:
        lines += [
            "",
            f"Measured peak: {_number(peak.get('fp32_gflops'), 1)} GFLOP/s fp32 and "
            f"{_number(peak.get('bf16_gflops'), 1)} GFLOP/s bf16 (3x3 convolutions), memory copy "
            f"{_number(peak.get('copy_gb_per_s'), 1)} GB/s.",
        ]
    batch = next((f.get("batch") for f in data["families"].values() if f.get("batch")), None)
    lines += ["", f"Training and inference, images/s{f' (batch {batch})' if batch else ''}:", ""]
    header = ["family", "input (h x w)", "train, reference", "train, automatic", "ratio", "inference, flip off / on"]
    lines += _table(header, _family_rows(data["families"]))
    lines += _backend_section(data.get("backends") or {})
    data_rows = _data_rows(data.get("data") or {})
    if data_rows:
        lines += ["", "Data pipeline, training samples/s of one worker:", ""]
        lines += _table(["paradigm", "reference reading", "fast path reading"], data_rows)
    workers = (data.get("data") or {}).get("workers_per_gpu") or {}
    if workers:
        batch_per_gpu = (data.get("data") or {}).get("published_batch_per_gpu")
        rows = [
            [source, _number(w.get("samples_per_s_per_gpu"), 1), w.get("workers", "-")] for source, w in workers.items()
        ]
        lines += ["", f"Data workers per GPU at published training speeds (batch {batch_per_gpu} per GPU):", ""]
        lines += _table(["published training speed of", "samples/s per GPU", "workers needed"], rows)
    e2e = data.get("bottomup_end_to_end")
    if e2e:
        lines += [
            "",
            f"HigherHRNet-W{e2e.get('width')} end to end at {e2e.get('input_size')} (resize, network, grouping): "
            f"{_number(e2e.get('flip_off_images_per_s'), 2)} / {_number(e2e.get('flip_on_images_per_s'), 2)} "
            "images/s without / with flip.",
        ]
    grouping = data.get("grouping") or {}
    if grouping:
        rows = [
            [
                scenario,
                _number(g.get("parse_refine"), 2),
                _number(g.get("parse_refine_1_thread"), 2),
                _number(g.get("parse_no_refine"), 2),
                g.get("threads", "-"),
            ]
            for scenario, g in grouping.items()
        ]
        lines += ["", "Grouping, ms per image (median):", ""]
        header = ["scenario", "with refine", "with refine, one thread", "without refine", "threads"]
        lines += _table(header, rows)
    steady = data.get("steady") or {}
    if steady:
        both = steady.get("tracking_and_smoothing") or {}
        lines += [
            "",
            f"Tracking + smoothing of {steady.get('people')} people (`benchmarks.bench_steady`): "
            f"{_number(both.get('median_ms'), 3)} ms per frame, median of {steady.get('frames')} frames "
            f"(aim under {_number(steady.get('aim_ms'), 0)} ms: {'met' if steady.get('aim_met') else 'not met'}).",
        ]
    png = path.with_suffix(".png")
    if png.is_file():
        title = f"make bench on {data['machine'].get('cpu', path.stem)}, {data['date']}"
        lines += ["", f"![{title}]({image_dir}/{png.name})"]
    return "\n".join(lines) + "\n"


def render_benchmarks(folder: Path, image_dir: str = IMAGE_DIR) -> str:
    """Markdown for every `make bench` report in ``folder``, one section each."""
    reports = load_benchmarks(folder)
    if not reports:
        return f"*No `make bench` report in `{Path(folder).as_posix()}/` yet.* Run `make bench` and rebuild the docs."
    return "\n".join(render_benchmark(path, data, image_dir) for path, data in reports)


def render_weights(path: Path) -> str:
    """Markdown tables of the weights registry: backbones, then published checkpoints."""
    import yaml

    try:
        entries = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ResultsFileError(f"{path}: not a readable registry ({err})") from err
    lines: list[str] = []
    backbones = [
        [f"`{name}`", e["initialises"], f"`{e['file_name']}`", e["licence"], e["confirmed_at"]]
        for name, e in entries.items()
        if e.get("kind") == "backbone"
    ]
    if backbones:
        lines += ["**Backbone initialisations** (`model.pretrained=NAME`)", ""]
        lines += _table(["name", "what it initialises", "file", "licence", "URL and hash confirmed in"], backbones)
    checkpoints = [
        [
            f"`{name}`",
            e["initialises"],
            f"`{e['experiment']}`",
            ", ".join(f"{k} {v}" for k, v in (e.get("accuracy") or {}).items()),
            e.get("accuracy_source", ""),
            e["licence"],
        ]
        for name, e in entries.items()
        if e.get("kind") == "checkpoint"
    ]
    if checkpoints:
        lines += ["", "**Published pose checkpoints** (`model_name=NAME`, `Predictor.from_pretrained(NAME)`)", ""]
        lines += _table(["name", "model", "network of", "published accuracy", "source", "licence"], checkpoints)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- steady video


def _load_folder(folder: Path, keys: tuple[str, ...]) -> list[tuple[Path, dict[str, Any]]]:
    """Every results file of ``folder`` with ``keys``, sorted by date, then file name."""
    folder = Path(folder)
    found = [(p, _read(p)) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    for path, data in found:
        for key in keys:
            _need(data, key, path)
    return sorted(found, key=lambda item: (str(item[1]["date"]), item[0].name))


def _nothing_yet(what: str, folder: Path, command: str) -> str:
    """The text of a section whose results folder holds no file yet: what to run to fill it."""
    return f"*No {what} results in `{Path(folder).as_posix()}/` yet.* Run `{command}` and rebuild the docs."


def _met(aim: dict[str, Any]) -> str:
    return "met" if aim.get("met") else "not met"


def render_tracking_video(folder: Path) -> str:
    """Markdown for every `benchmarks.tracking_video` file: per run (raw, smoothed) MOTA, ID
    switches (all, of people who never cross, of the crossing and the re-entering ones), misses,
    false positives, jitter and AP, with the aims and the command."""
    runs = _load_folder(folder, ("date", "machine", "boxes", "tracking", "jitter_px_per_frame2", "ap", "aims"))
    if not runs:
        return _nothing_yet("tracking video", folder, "python -m benchmarks.tracking_video --pose-ckpt ...")
    lines: list[str] = []
    header = ["keypoints", "MOTA", "ID switches", "never crossing", "of them in view", "crossing", "re-entering"]
    header += ["misses", "false positives", "jitter px/frame²", "AP"]
    for path, data in runs:
        boxes = {"detector": "boxes of the bottom-up detector", "truth": "ground-truth boxes"}.get(data["boxes"])
        video = data.get("video") or {}
        lines += ["", f"#### {boxes or data['boxes']}, {data['date']}", ""]
        if data.get("overrides"):
            lines += ["Options of both runs: " + ", ".join(f"`{o}`" for o in data["overrides"]) + ".", ""]
        lines.append(
            f"{_machine(data['machine'])}; {video.get('frames', '?')} frames at {video.get('fps', '?')} frames/s, "
            f"{video.get('ground_truth_instances', '?')} people-frames, a re-entry after "
            f"{video.get('reentry_gap_frames', '?')} frames out of sight; OKS match threshold "
            f"{data.get('oks_threshold', '?')}. File: `{TRACKING_VIDEO.as_posix()}/{path.name}`."
        )
        lines.append("")
        jitter, rows = data["jitter_px_per_frame2"], []
        for name in ("raw", "smoothed"):
            t, groups = data["tracking"][name], data["tracking"][name].get("id_switches_by_group", {})
            rows.append(
                [
                    name,
                    _number(t.get("mota")),
                    t.get("id_switches", "-"),
                    groups.get("never_cross", "-"),
                    groups.get("never_cross_in_view", "-"),
                    groups.get("cross", "-"),
                    groups.get("reenter", "-"),
                    t.get("misses", "-"),
                    t.get("false_positives", "-"),
                    _number(jitter.get(name), 2),
                    _number(data["ap"].get(name)),
                ]
            )
        rows.append(["ground truth", *[""] * 8, _number(jitter.get("ground_truth"), 2), ""])
        lines += _table(header, rows)
        aims = data["aims"]
        lines += [
            "",
            f"Aims: ID switches of people who never cross {aims['non_crossing_id_switches']['measured']} "
            f"(aim {aims['non_crossing_id_switches']['aim']}: {_met(aims['non_crossing_id_switches'])}); "
            f"smoothed / raw jitter {_number(aims['jitter_ratio']['measured'], 2)} (aim at most "
            f"{aims['jitter_ratio']['aim']}: {_met(aims['jitter_ratio'])}); AP lost to smoothing "
            f"{_number(aims['ap_cost']['measured'], 4)} (aim below {aims['ap_cost']['aim']}: {_met(aims['ap_cost'])}). "
            f"Jitter over {jitter.get('joint_triples', '?')} joint triples visible in the ground truth and "
            "matched in both runs.",
        ]
        sweep = data.get("sweep") or []
        if sweep:
            lines += ["", "The raw keypoints smoothed afresh with other One-Euro settings (`--sweep`):", ""]
            rows = [
                [
                    _number(r.get("min_cutoff"), 2),
                    _number(r.get("beta"), 2),
                    _number(r.get("jitter_ratio"), 2),
                    _number(r.get("ap")),
                    _number(r.get("ap_cost"), 4),
                    _number(r.get("mota")),
                ]
                for r in sweep
            ]
            lines += _table(["min_cutoff (Hz)", "beta (s/px)", "jitter, smoothed / raw", "AP", "AP lost", "MOTA"], rows)
        if data.get("command"):
            lines += ["", f"Command: `{data['command']}`"]
    return "\n".join(lines).strip() + "\n"


def render_steady_speed(folder: Path) -> str:
    """Markdown for every `benchmarks.bench_steady` file: tracking + smoothing ms per frame and,
    where measured, the video pipeline's frames/s and time per stage."""
    runs = _load_folder(folder, ("date", "machine", "step"))
    if not runs:
        return _nothing_yet("steady video speed", folder, "python -m benchmarks.bench_steady")
    lines: list[str] = []
    for path, data in runs:
        step = data["step"]
        both = step.get("tracking_and_smoothing", {})
        lines += ["", f"#### {data['machine'].get('cpu', path.stem)}, {data['date']}", ""]
        lines.append(
            f"Tracking + smoothing of {step.get('people')} people: {_number(both.get('median_ms'), 3)} ms per frame "
            f"(median of {step.get('frames')} frames; 90th percentile {_number(both.get('p90_ms'), 3)} ms; tracking "
            f"{_number(step.get('tracking', {}).get('median_ms'), 3)} ms, smoothing "
            f"{_number(step.get('smoothing', {}).get('median_ms'), 3)} ms alone; aim under "
            f"{_number(step.get('aim_ms'), 0)} ms: {'met' if step.get('aim_met') else 'not met'}). "
            f"File: `{STEADY.as_posix()}/{path.name}`."
        )
        pipe = data.get("pipeline")
        if pipe:
            models = pipe.get("pose_model", "?") + (
                f" on {pipe['detector_model']} boxes" if pipe.get("detector_model") else ""
            )
            video = pipe.get("video") or {}
            size = "x".join(str(v) for v in video.get("size", []))
            lines += [
                "",
                f"Video pipeline ({models}; {pipe.get('frames')} frames of {size}, batch {pipe.get('batch_size')}, "
                f"{pipe.get('threads')} threads): {_number(pipe.get('frames_per_s'), 2)} frames/s.",
                "",
            ]
            shares, per_frame = pipe.get("stage_share") or {}, pipe.get("stage_ms_per_frame") or {}
            rows = [
                [stage, _number(per_frame.get(stage), 2), f"{_number(100 * share, 1)}%"]
                for stage, share in shares.items()
            ]
            lines += _table(["stage", "ms per frame", "share of the time"], rows)
        if data.get("command"):
            lines += ["", f"Command: `{data['command']}`"]
    return "\n".join(lines).strip() + "\n"


def render_absolute_video(folder: Path) -> str:
    """Markdown for every `benchmarks.absolute_video` file: frames with the people in their true depth
    order, each person's true depth and mean depth error, the checkpoints and the command."""
    keys = ("date", "machine", "frames_in_order", "per_frame", "mean_abs_depth_error_mm", "true_depth_range_mm")
    runs = _load_folder(folder, keys)
    if not runs:
        return _nothing_yet(
            "absolute video", folder, "python -m benchmarks.absolute_video --pose-ckpt ... --root-ckpt ..."
        )
    lines: list[str] = []
    for path, data in runs:
        frames = len(data["per_frame"])
        lines += [
            "",
            f"{_machine(data['machine'])}, {data['date']}: **{data['frames_in_order']} of {frames} frames** with "
            f"every person in the true depth order (file `{BENCHMARKS.as_posix()}/absolute_video/{path.name}`).",
            "",
        ]
        rows = [
            [i + 1, f"{lo / 1000:.2f}-{hi / 1000:.2f}", _number(err, 1)]
            for i, ((lo, hi), err) in enumerate(zip(data["true_depth_range_mm"], data["mean_abs_depth_error_mm"]))
        ]
        lines += _table(["person", "true root depth, m", "mean depth error, mm"], rows)
        models = f"Pose model `{data.get('pose_ckpt')}`, RootNet `{data.get('root_ckpt')}`"
        lines += ["", f"{models}; `{data.get('command')}`."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- markers


def render_markers(markdown: str, root: Path, image_dir: str = IMAGE_DIR) -> str:
    """``markdown`` with every results marker replaced by its table, from the files under ``root``."""
    root = Path(root)
    renderers = {
        "quickstarts": lambda: render_quickstarts(root / QUICKSTARTS),
        "benchmarks": lambda: render_benchmarks(root / BENCHMARKS, image_dir),
        "weights": lambda: render_weights(root / WEIGHTS),
        "tracking_video": lambda: render_tracking_video(root / TRACKING_VIDEO),
        "steady_speed": lambda: render_steady_speed(root / STEADY),
        "absolute_video": lambda: render_absolute_video(root / ABSOLUTE_VIDEO),
    }

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in renderers:
            raise ResultsFileError(f"unknown results marker {match.group(0)!r}; known: {sorted(renderers)}")
        return renderers[name]()

    return MARKER.sub(replace, markdown)


# ---------------------------------------------------------------------------------------- MkDocs hooks


def _root(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def on_files(files: Any, config: Any) -> Any:
    """Publish the benchmark PNGs under ``results/`` in the site, so pages can show them."""
    from mkdocs.structure.files import File

    for png in sorted((_root(config) / BENCHMARKS).glob("*.png")):
        files.append(File.generated(config, f"{IMAGE_DIR}/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the results markers of a page; image links are made relative to the page."""
    depth = page.file.src_uri.count("/")
    return render_markers(markdown, _root(config), image_dir="../" * depth + IMAGE_DIR)
