from pathlib import Path

import pytest
from helpers.raw_grammar import (
    bad_mmrl_rows,
    bad_textrl_rows,
    good_mmrl_rows,
    hostile_image_rows,
    hostile_python_rows,
    png_bytes,
)

from revisual_verl.data.rejections import RowRejected
from revisual_verl.data.rl_rows import REVISUAL_INSTRUCTION, RLFields, build_user_text, to_rl_row

MMRL = RLFields(data_source="grammar_mmrl")


def test_an_image_row_becomes_a_verl_row_with_the_instruction_and_image_bytes(tmp_path):
    raw = good_mmrl_rows(2)[1]
    row = to_rl_row(raw, 7, MMRL, tmp_path, with_images=True)
    assert row["data_source"] == "grammar_mmrl"
    assert row["prompt"] == [{"role": "user", "content": f"{raw['problem'].strip()} {REVISUAL_INSTRUCTION}"}]
    assert "<think>" in row["prompt"][0]["content"] and "\\boxed{}" in row["prompt"][0]["content"]
    assert [image["bytes"] for image in row["images"]] == [image["bytes"] for image in raw["images"]]
    assert row["reward_model"] == {"style": "rule", "ground_truth": "1"}
    assert row["extra_info"] == {"split": "", "index": 7, "source": "geoqa", "problem": raw["problem"], "answer": "1"}


def test_the_instruction_is_configurable():
    assert build_user_text("  2+2?  ", "Answer in \\boxed{}.") == "2+2? Answer in \\boxed{}."
    assert build_user_text("2+2?", "Solve: {problem}\nThink first.") == "Solve: 2+2?\nThink first."
    assert build_user_text("2+2?", "") == "2+2?"


def test_numbers_become_text_answers_and_empty_tags_become_unknown(tmp_path):
    row = to_rl_row({"problem": "1+1?", "answer": 2, "dataset": ""}, 0, RLFields(), tmp_path, with_images=False)
    assert row["reward_model"]["ground_truth"] == "2"
    assert row["extra_info"]["source"] == "unknown"
    assert row["images"] == []


def test_an_image_kept_by_path_is_read_from_next_to_the_input(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png_bytes())
    raw = {"problem": "<image> What?", "answer": "1", "images": [{"bytes": None, "path": "img/a.png"}]}
    row = to_rl_row(raw, 0, MMRL, Path(tmp_path), with_images=True)
    assert row["images"] == [{"bytes": png_bytes(), "path": "img/a.png"}]


@pytest.mark.parametrize("raw, reason", bad_mmrl_rows())
def test_bad_image_rows_are_rejected_with_their_reason(tmp_path, raw, reason):
    with pytest.raises(RowRejected) as caught:
        to_rl_row(raw, 0, MMRL, tmp_path, with_images=True)
    assert caught.value.reason == reason


@pytest.mark.parametrize("raw, reason", bad_textrl_rows())
def test_bad_text_rows_are_rejected_with_their_reason(tmp_path, raw, reason):
    with pytest.raises(RowRejected) as caught:
        to_rl_row(raw, 0, RLFields(), tmp_path, with_images=False)
    assert caught.value.reason == reason


@pytest.mark.parametrize("raw, reason", hostile_image_rows("img/a.png") + hostile_python_rows())
def test_image_fields_and_answers_of_the_wrong_type_are_rejected_not_raised(tmp_path, raw, reason):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png_bytes())
    with pytest.raises(RowRejected) as caught:
        to_rl_row(raw, 0, MMRL, tmp_path, with_images=True)
    assert caught.value.reason == reason
    assert len(caught.value.detail) < 200
