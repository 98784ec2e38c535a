"""The bottom-up benchmark runs end to end on a tiny setting and reports every figure (no timing asserted)."""

from benchmarks.bench_bottomup import main


def test_bench_bottomup_reports_all_figures():
    figures = main(
        [
            "--width",
            "8",
            "--input-size",
            "64",
            "--images",
            "1",
            "--rounds",
            "1",
            "--threads",
            "1",
            "--grouping-args",
            "--images 1 --repeats 1 --size 64",
        ]
    )
    for flip in ("on", "off"):
        assert figures[f"flip_{flip}_s_per_image"] > 0
        assert abs(figures[f"flip_{flip}_images_per_s"] * figures[f"flip_{flip}_s_per_image"] - 1) < 1e-9
    assert any("refine" in key for key in figures)
