"""recipes/evaluate.sh: a model scored on every benchmark through verl's validation (val_only), on the CPU.

A tiny Qwen2.5-VL (random weights: its accuracy is whatever it is; what is checked is the path) is evaluated on
the ten benchmarks converted by `revisual-data prepare eval` from the schemas' own test rows. The report must
agree with verl's own val-core metric, hold every converted problem with k samples, and keep the generations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from revisual_verl.data.cli import main as revisual_data
from revisual_verl.evaluation.paper import TABLE2
from tests.helpers.raw_benchmarks import BUILDERS

ROOT = Path(__file__).resolve().parents[2]
EVALUATE = ROOT / "recipes" / "evaluate.sh"
K = 2


def environment(**extra) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for key in ("DRY_RUN", "DEVICE", "MODEL_PATH", "VERL_PLATFORM", "OUT_DIR"):
        env.pop(key, None)
    env.update(PYTHON=sys.executable, NVIDIA_SMI="/nonexistent/nvidia-smi", **extra)
    return env


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    folders = {}
    for name, build in BUILDERS.items():
        (root / "raw" / name).mkdir(parents=True)
        raw = build(root / "raw" / name)
        out = root / "prepared" / name
        flags = ["prepare", "eval", "--benchmark", name, "--input", str(raw.path), "--output", str(out)]
        assert revisual_data([*flags, "--no-progress"]) == 0, name
        folders[name] = (out, len(raw.kept))
    return folders


@pytest.fixture(scope="module")
def evaluation(benchmarks, tmp_path_factory):
    from revisual_verl.cpu.tiny_model import build_tiny_qwen25_vl

    work = tmp_path_factory.mktemp("evaluate")
    model = build_tiny_qwen25_vl(work / "tiny-model")
    out = work / "eval"
    env = environment(DEVICE="cpu", OUT_DIR=str(out), EVAL_SAMPLES=str(K), EVAL_RESPONSE_LENGTH="12")
    command = ["bash", str(EVALUATE), str(model), *(str(folder) for folder, _ in benchmarks.values())]
    # Small pictures and prompts for the tiny model: the defaults (512^2..1024^2 pixels) are a 7B model's.
    command += ["--", "data.mm_processor_kwargs.min_pixels=3136", "data.mm_processor_kwargs.max_pixels=12544"]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:] + _log_tail(out)
    return out, result


def _log_tail(out: Path) -> str:
    log = out / "eval.log"
    return log.read_text(errors="replace")[-6000:] if log.exists() else ""


def test_every_benchmark_is_scored_with_k_samples_as_verl_scores_it(evaluation, benchmarks):
    out, _ = evaluation
    report = json.loads((out / "eval.json").read_text())
    assert list(report["benchmarks"]) == [column.benchmark for column in TABLE2]
    for name, entry in report["benchmarks"].items():
        assert entry["problems"] == benchmarks[name][1], name
        assert entry["k"] == K
        # The report regroups verl's dumped generations; verl computes its metric from the batch itself.
        assert entry["mean_at_k"] == pytest.approx(entry["verl_mean_at_k"], abs=0.01), name
        assert 0 <= entry["mean_at_k"] <= entry["pass_at_k"] <= 100
    assert report["settings"]["temperature"] == "0.3" and report["settings"]["top_p"] == "0.95"


def test_the_generations_are_kept_with_what_the_verifier_read(evaluation, benchmarks):
    out, _ = evaluation
    [dump] = list((out / "generations").glob("*.jsonl"))
    rows = [json.loads(line) for line in dump.read_text().splitlines()]
    assert len(rows) == K * sum(count for _, count in benchmarks.values())
    assert {row["data_source"] for row in rows} == set(BUILDERS)
    assert all({"input", "output", "acc", "pred", "score"} <= set(row) for row in rows)


def test_the_terminal_shows_table2_beside_the_paper(evaluation):
    out, result = evaluation
    header = "| Model | " + " | ".join(column.title for column in TABLE2) + " | Avg. |"
    assert header in result.stdout
    paper_row = "| ReVisual-R1-7B (paper) | " + " | ".join(f"{c.score:.1f}" for c in TABLE2) + " | 53.1 |"
    assert paper_row in result.stdout
    assert (out / "eval.md").read_text().startswith(header)
    # verl's own output stays in the log, not on the terminal.
    assert len(result.stdout.splitlines()) + len(result.stderr.splitlines()) < 30


def test_usage_errors_name_what_is_wrong(tmp_path):
    run = subprocess.run(["bash", str(EVALUATE)], env=environment(), capture_output=True, text=True)
    assert run.returncode == 2 and "usage: bash recipes/evaluate.sh MODEL_DIR DATA_DIR" in run.stderr
    run = subprocess.run(
        ["bash", str(EVALUATE), str(tmp_path), str(tmp_path / "nowhere")],
        env=environment(DEVICE="cpu"),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "has no config.json" in run.stderr
    help_text = subprocess.run(["bash", str(EVALUATE), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "EVAL_SAMPLES" in help_text.stdout


def test_a_dry_run_composes_the_eval_config(benchmarks, tmp_path):
    folder, _ = benchmarks["math500"]
    run = subprocess.run(
        ["bash", str(EVALUATE), str(tmp_path / "model"), str(folder)],
        env=environment(DRY_RUN="1", OUT_DIR=str(tmp_path / "out")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "--config-name=eval" in run.stderr and "val_kwargs.n=8" in run.stderr
