import pytest

from revisual_verl.reward.answer_screen import too_costly


@pytest.mark.parametrize(
    "answer",
    ["(10^{100})!", "{10^{9}}!", "1000!", "(12345)!", "9^{9^{9}}", "10^{10^10}", "2^3^4", "2^{1000000}", "(2^{100})!"],
)
def test_explosive_numbers_are_refused(answer):
    assert too_costly(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "n!",
        "5!",
        "120",
        "10^{100}",
        "e^{x^2}",
        "2^{2^{n}}",
        "x^2 + 2x + 1",
        "\\frac{(n+1)}{2}",
        "100!/98!",
        "(n+1)!",
        "\\binom{10}{3} \\cdot 3!",
    ],
)
def test_ordinary_answers_pass(answer):
    assert too_costly(answer) is None
