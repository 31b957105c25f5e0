"""revisual_verl.recipes.data_checks: footers only, clear errors naming the file and the column."""

from __future__ import annotations

import pandas as pd
import pytest

from revisual_verl.recipes.data_checks import DataCheckError, as_paths, check_columns, summarize


def rl_rows(count: int, images: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "data_source": ["x"] * count,
            "prompt": [[{"role": "user", "content": "q"}]] * count,
            "images": [[{"bytes": b"png", "path": None}] * images] * count,
            "reward_model": [{"style": "rule", "ground_truth": "1"}] * count,
        }
    )


def test_summary_counts_rows_and_images_over_shards(tmp_path):
    rl_rows(3, 2).to_parquet(tmp_path / "a.parquet")
    rl_rows(4, 1).to_parquet(tmp_path / "b.parquet")
    summary = summarize([str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], "data.train_files", "images")
    assert summary.rows == 7
    assert summary.images == 3 * 2 + 4
    assert summary.reward_model_fields == {"style", "ground_truth"}
    check_columns(summary, "data.train_files", ["prompt", "data_source", "images"])


def test_text_rows_have_no_images(tmp_path):
    rl_rows(5, 0).to_parquet(tmp_path / "t.parquet")
    assert summarize([str(tmp_path / "t.parquet")], "k", "images").images == 0
    assert summarize([str(tmp_path / "t.parquet")], "k").images is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: None, "does not exist"),
        (lambda d: (d / "f.parquet").write_text("not parquet"), "is not a readable parquet file"),
        (lambda d: rl_rows(2, 0).drop(columns=["prompt"]).to_parquet(d / "f.parquet"), "lacks column(s) ['prompt']"),
        (lambda d: rl_rows(0, 0).to_parquet(d / "f.parquet"), "has no rows"),
        (
            lambda d: rl_rows(2, 0).assign(reward_model=[{"style": "rule"}] * 2).to_parquet(d / "f.parquet"),
            "no ground_truth",
        ),
    ],
)
def test_bad_files_raise_naming_the_file(tmp_path, make, message):
    make(tmp_path)
    path = str(tmp_path / "f.parquet")
    with pytest.raises(DataCheckError, match=r"data\.val_files: .*") as caught:
        check_columns(summarize([path], "data.val_files"), "data.val_files", ["prompt"])
    assert message in str(caught.value)


def test_shards_must_agree_on_columns(tmp_path):
    rl_rows(2, 0).to_parquet(tmp_path / "a.parquet")
    rl_rows(2, 0).drop(columns=["images"]).to_parquet(tmp_path / "b.parquet")
    with pytest.raises(DataCheckError, match="unlike the earlier files"):
        summarize([str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], "data.train_files")


def test_config_values_become_path_lists():
    assert as_paths(None) == [] and as_paths("a.parquet") == ["a.parquet"] and as_paths(["a", "b"]) == ["a", "b"]
    with pytest.raises(DataCheckError, match="no data file given"):
        summarize([], "data.train_files")
