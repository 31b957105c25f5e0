import pytest
from helpers.raw_grammar import bad_coldstart_rows, coldstart_rows, hostile_coldstart_rows

from revisual_verl.data.coldstart import detect_layout, has_think_trace, to_messages
from revisual_verl.data.rejections import RowRejected


def test_each_layout_is_detected_and_converted():
    converted = [to_messages(row) for row in coldstart_rows()]
    assert [layout for _, layout in converted] == ["alpaca", "alpaca", "sharegpt", "sharegpt", "messages", "messages"]

    plain, _ = converted[0]
    assert plain == [
        {"role": "user", "content": "What is 1 + 1?"},
        {"role": "assistant", "content": coldstart_rows()[0]["output"]},
    ]
    with_history, _ = converted[1]
    assert [m["role"] for m in with_history] == ["system", "user", "assistant", "user", "assistant"]
    assert with_history[0]["content"] == "Be brief."
    assert with_history[1:3] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert with_history[3]["content"] == "Add the numbers.\n1 and 1"

    sharegpt_in_messages_key, _ = converted[3]
    assert [m["role"] for m in sharegpt_in_messages_key] == ["system", "user", "assistant"]
    text_parts, _ = converted[5]
    assert text_parts[0] == {"role": "user", "content": "1 + 1?"}
    assert all(has_think_trace(messages) for messages, _ in converted[:5])
    assert not has_think_trace(text_parts)


@pytest.mark.parametrize("row, reason", bad_coldstart_rows() + hostile_coldstart_rows())
def test_bad_rows_are_rejected_with_their_reason(row, reason):
    with pytest.raises(RowRejected) as caught:
        to_messages(row)
    assert caught.value.reason == reason


def test_a_forced_layout_overrides_detection():
    row = {"instruction": "Q", "output": "A", "conversations": "not used"}
    assert detect_layout(row) == "sharegpt"
    messages, layout = to_messages(row, layout="alpaca")
    assert layout == "alpaca" and messages[-1] == {"role": "assistant", "content": "A"}
