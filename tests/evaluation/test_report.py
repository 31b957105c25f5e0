"""eval.json and eval.md from verl's dumped generations and its file-logger metrics."""

import json

import pytest

from revisual_verl.evaluation import report
from revisual_verl.evaluation.paper import BY_BENCHMARK, PAPER_AVERAGE, TABLE2


def dump(path, rows):
    path.mkdir(parents=True, exist_ok=True)
    (path / "0.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def rows_for(source, outcomes, k):
    """k samples per problem; outcomes[i][j] is (acc, pred) of problem i's j-th sample."""
    return [
        {
            "input": f"{source} problem {i}",
            "output": "...",
            "data_source": source,
            "acc": acc,
            "pred": pred,
            "score": acc,
        }
        for i, problem in enumerate(outcomes)
        for acc, pred in problem[:k]
    ]


def test_table2_is_the_papers():
    assert [c.title for c in TABLE2] == [
        "MathVerse",
        "MathVision",
        "MathVista",
        "DynaMath",
        "WeMath",
        "LogicVista",
        "AIME24",
        "AIME25",
        "GPQA",
        "MATH500",
    ]
    assert round(sum(c.score for c in TABLE2) / len(TABLE2), 1) == PAPER_AVERAGE


def test_report_scores_each_benchmark_and_lays_out_table2(tmp_path):
    rows = (
        rows_for("math500", [[(1, "4"), (1, "4")], [(0, "2"), (1, "3")]], 2)
        + rows_for("mathvista", [[(0, "A"), (0, "B")], [(1, "C"), (1, "C")], [(0, ""), (0, "")]], 2)
        + rows_for("digits_text", [[(1, "7"), (0, "8")]], 2)
    )
    generations = dump(tmp_path / "gen", rows)
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(json.dumps({"step": 0, "data": {"val-core/math500/acc/mean@2": 0.75}}) + "\n")
    out = report.write_report(generations, tmp_path / "out", metrics, splits={"math500": "test"}, model="m")
    assert list(out["benchmarks"]) == ["mathvista", "math500", "digits_text"]  # Table 2's order, then the rest
    math500 = out["benchmarks"]["math500"]
    assert (math500["problems"], math500["k"], math500["mean_at_k"], math500["verl_mean_at_k"]) == (2, 2, 75.0, 75.0)
    assert math500["pass_at_k"] == 100.0 and math500["maj_at_k"] == 50.0
    assert math500["paper"] == BY_BENCHMARK["math500"].score and math500["comparable_to_paper"] is True
    assert out["benchmarks"]["mathvista"]["mean_at_k"] == pytest.approx(100 * 2 / 6, abs=0.01)
    assert out["benchmarks"]["mathvista"]["comparable_to_paper"] is False  # its split is unknown
    assert "paper" not in out["benchmarks"]["digits_text"]
    assert out["average"]["paper_same_benchmarks"] == pytest.approx((73.1 + 89.2) / 2, abs=0.01)
    saved = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert saved["benchmarks"] == out["benchmarks"]
    table = (tmp_path / "out" / "eval.md").read_text()
    assert "| Model | MathVista | MATH500 | digits_text | Avg. |" in table
    assert "| ReVisual-R1-7B (paper) | 73.1 | 89.2 | – | 81.2 |" in table
    assert "| this model (mean@2) | 33.3 | 75.0 | 50.0 | 52.8 |" in table
    assert "MathVista (ours: unknown split, paper: testmini)" in table


def test_k_comes_from_verls_metrics_and_a_bad_grouping_is_an_error(tmp_path):
    rows = rows_for("aime24", [[(1, "1"), (0, "2"), (0, "2")]], 3)
    generations = dump(tmp_path / "gen", rows)
    metrics = tmp_path / "m"
    metrics.mkdir()
    (metrics / "launch.jsonl").write_text(json.dumps({"step": 0, "data": {"val-core/aime24/acc/mean@3": 1 / 3}}) + "\n")
    out = report.write_report(generations, tmp_path / "out", metrics)
    assert out["benchmarks"]["aime24"]["k"] == 3
    with pytest.raises(ValueError, match="do not split"):
        report.write_report(generations, tmp_path / "out", k=2)
    mixed = rows_for("aime24", [[(1, "1"), (0, "2")]], 2) + rows_for("aime25", [[(1, "1"), (0, "2")]], 2)
    with pytest.raises(ValueError, match="not one problem"):
        report.group_problems(mixed[1:3], 2)
    with pytest.raises(ValueError, match="k .* is unknown"):
        report.write_report(generations, tmp_path / "out")


def test_a_dump_without_the_reward_fields_names_what_is_missing(tmp_path):
    generations = dump(tmp_path / "gen", [{"input": "x", "output": "y", "score": 1.0}])
    with pytest.raises(ValueError, match="no 'acc'"):
        report.read_generations(generations)
    (generations / "0.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="0.jsonl:1: not JSON"):
        report.read_generations(generations)
    assert report.main(["--generations", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--k", "1"]) == 1


def test_the_latest_validation_file_is_read(tmp_path):
    generations = tmp_path / "gen"
    dump(generations, rows_for("math500", [[(0, "1")]], 1))
    (generations / "10.jsonl").write_text(json.dumps(rows_for("math500", [[(1, "1")]], 1)[0]) + "\n")
    (generations / "9.jsonl").write_text(json.dumps(rows_for("math500", [[(0, "1")]], 1)[0]) + "\n")
    assert report.write_report(generations, tmp_path / "out", k=1)["benchmarks"]["math500"]["mean_at_k"] == 100.0


def test_responses_holding_unicode_line_breaks_stay_one_record(tmp_path):
    # verl dumps with ensure_ascii=False: a model's U+2028, U+0085 or form feed reaches the file as is.
    rows = rows_for("math500", [[(1, "4"), (0, "5")]], 2)
    rows[0]["output"] = "a\u2028b\x85c\x0cd\x1ce"
    generations = tmp_path / "gen"
    generations.mkdir()
    (generations / "0.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    assert [row["output"] for row in report.read_generations(generations)][0] == rows[0]["output"]
    assert report.write_report(generations, tmp_path / "out", k=2)["benchmarks"]["math500"]["mean_at_k"] == 50.0
