"""The benchmarks the paper reports, read from the files their Hugging Face datasets hold.

Each reader is a pure function from one raw row (as parquet or JSON Lines gives it) to an
:class:`~revisual_verl.data.eval_rows.EvalItem`, raising :class:`RowRejected` for a row that cannot be evaluated.
Nothing here downloads: docs/eval.md says where each file comes from.

Rules shared by every benchmark:

* an image field may hold a Hugging Face image struct (``{"bytes", "path"}``), raw bytes, a path relative to the
  input file's folder, or a list of those (several images); the first of the benchmark's image fields that holds
  one wins (``decoded_image`` before ``image``, whose text is only a path). A question that needs an image and has
  none is skipped as ``missing_image``;
* the benchmark's own image markers (``<image>``, MathVision's ``<image1>``) are taken out of the question, and the
  prompt puts one ``<image>`` per image ahead of it; in an option's text a marker is the option (a picture), so it
  is kept, as words ("image 2");
* a multiple-choice question keeps its options: in the prompt, lettered, and in ``extra_info.choices``, in letter
  order; its ground truth is the right option's letter. The reward accepts that letter or the right option's text
  (:mod:`revisual_verl.reward.choices`). Options that live in the picture only cannot be listed; such rows are
  judged on the letter alone (counted in the report's notes as ``choices_not_listed``);
* GPQA lists the right answer apart from three wrong ones; they are shuffled in an order fixed by ``--seed`` and
  the question, and the right one's letter recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from revisual_verl.data.choices import (
    MULTIPLE_CHOICE,
    answer_letter,
    clean_options,
    options_block,
    parse_options,
    shuffled_options,
)
from revisual_verl.data.eval_rows import EvalItem
from revisual_verl.data.rejections import (
    INVALID_CHOICES,
    MISSING_IMAGE,
    MISSING_PROBLEM,
    NOT_AN_OBJECT,
    RowRejected,
    quote,
)
from revisual_verl.data.rl_rows import ground_truth

_IMAGE_MARKER = re.compile(r"<image\s*(\d*)>")
_KIND_SEPARATORS = re.compile(r"[\s_-]+")


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: its ``data_source`` name, where its file comes from, and its row reader."""

    name: str
    dataset: str  # the Hugging Face dataset id
    config: str | None  # its configuration, as ``load_dataset(dataset, config, split=split)`` names it
    split: str
    ability: str
    read: Callable[[dict, int], EvalItem]  # (raw row, seed) -> item
    gated: bool = False  # the dataset's terms must be accepted on Hugging Face before it can be downloaded

    def source(self) -> str:
        """Where the rows come from, in ``load_dataset``'s terms."""
        config = f", {self.config!r}" if self.config else ""
        return f"load_dataset({self.dataset!r}{config}, split={self.split!r})" + (" (gated)" if self.gated else "")


def _value(raw: dict, keys: tuple[str, ...]) -> object:
    """The first of ``keys`` the row holds a value under (None when it holds none)."""
    for key in keys:
        value = raw.get(key)
        if value is not None:
            return value
    return None


def _text(raw: dict, keys: tuple[str, ...]) -> str:
    """An optional text field (a number becomes text); "" when absent or of another type."""
    value = _value(raw, keys)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return str(value).strip()


def _without_markers(text: str) -> str:
    return _IMAGE_MARKER.sub("", text).strip()


def _question(raw: dict, keys: tuple[str, ...]) -> str:
    value = _value(raw, keys)
    if not isinstance(value, str) or not _without_markers(value):
        raise RowRejected(MISSING_PROBLEM, f"{keys[0]!r} is missing, empty or not text")
    return _without_markers(value)


def _answer(raw: dict, keys: tuple[str, ...]) -> str:
    return ground_truth(_value(raw, keys))


def _missing(image: object) -> bool:
    if image is None or (isinstance(image, str | bytes) and not image.strip()):
        return True
    return isinstance(image, dict) and not image.get("bytes") and not image.get("path")


def _images(raw: dict, keys: tuple[str, ...], required: bool = True) -> tuple:
    """The row's images from the first of ``keys`` that holds any; a list holds several."""
    for key in keys:
        value = raw.get(key)
        images = value if isinstance(value, list) else [value]
        if all(_missing(image) for image in images):
            continue
        for position, image in enumerate(images):
            if _missing(image):
                raise RowRejected(MISSING_IMAGE, f"{key!r} image {position} has neither bytes nor a path")
        return tuple(images)
    if required:
        raise RowRejected(MISSING_IMAGE, f"the question needs an image and {' / '.join(map(repr, keys))} hold none")
    return ()


def _is_multiple_choice(kind: str) -> bool:
    """MathVista's ``multi_choice``, MathVerse's ``multi-choice``, DynaMath's ``multiple choice``."""
    return _KIND_SEPARATORS.sub(" ", kind.lower()) in ("multi choice", "multiple choice")


def _option_words(values: object) -> object:
    """Options whose text is a picture marker keep it as words, so the option is not left empty."""
    if not isinstance(values, list):
        return values
    return [_IMAGE_MARKER.sub(lambda m: f"image {m.group(1)}".strip(), v) if isinstance(v, str) else v for v in values]


def _multiple_choice(
    problem: str, question: str, answer: str, options: list[str], images: tuple, by_letter: bool = True, **fields
) -> EvalItem:
    return EvalItem(
        problem=problem,
        question=question,
        answer=answer_letter(answer, options, by_letter),
        images=images,
        choices=tuple(options),
        question_type=MULTIPLE_CHOICE,
        **fields,
    )


def _mathvista(raw: dict, seed: int) -> EvalItem:
    """AI4Math/MathVista: the prompt is the benchmark's ``query`` (its hint, question and lettered choices); a
    multiple-choice answer is the right choice's text."""
    question = _question(raw, ("question",))
    answer = _answer(raw, ("answer",))
    images = _images(raw, ("decoded_image", "image"))
    query = _without_markers(_text(raw, ("query",)))
    kind, choices = _text(raw, ("question_type",)), raw.get("choices")
    metadata = raw.get("metadata")
    fields = {
        "answer_type": _text(raw, ("answer_type",)),
        "unit": _text(raw, ("unit",)),
        "category": str(metadata.get("task") or "") if isinstance(metadata, dict) else "",
        "source_id": _text(raw, ("pid",)),
    }
    if _is_multiple_choice(kind) or (not kind and choices):
        options = clean_options(choices)
        problem = query or f"{question}\n{options_block(options)}"
        return _multiple_choice(problem, question, answer, options, images, by_letter=False, **fields)
    return EvalItem(query or question, question, answer, images, **fields)


def _mathvision(raw: dict, seed: int) -> EvalItem:
    """MathLLMs/MathVision: ``options`` lists the choices (empty for a free-form question), ``answer`` is a
    letter or a value; ``image`` is only a path, the picture is ``decoded_image``."""
    question = _question(raw, ("question",))
    answer = _answer(raw, ("answer",))
    images = _images(raw, ("decoded_image", "image"))
    fields = {"category": _text(raw, ("subject",)), "source_id": _text(raw, ("id",))}
    if raw.get("options"):
        options = clean_options(_option_words(raw.get("options")))
        return _multiple_choice(f"{question}\n{options_block(options)}", question, answer, options, images, **fields)
    return EvalItem(question, question, answer, images, **fields)


def _mathverse(raw: dict, seed: int) -> EvalItem:
    """AI4Math/MathVerse testmini: the prompt is ``query_cot``, the authors' chain-of-thought prompt; the options
    of a multiple-choice question are in its text; the "Text Only" version has no picture."""
    question = _question(raw, ("question",))
    answer = _answer(raw, ("answer",))
    version = _text(raw, ("problem_version",))
    images = _images(raw, ("image",), required=version.lower() != "text only")
    problem = _without_markers(_text(raw, ("query_cot",))) or question
    fields = {"category": version, "source_id": _text(raw, ("sample_index",))}
    if _is_multiple_choice(_text(raw, ("question_type",))):
        return _multiple_choice(problem, question, answer, parse_options(question), images, **fields)
    return EvalItem(problem, question, answer, images, **fields)


def _dynamath(raw: dict, seed: int) -> EvalItem:
    """DynaMath/DynaMath_Sample: ``ground_truth`` is the answer; a ``multiple choice`` question lists its options
    in its text."""
    question = _question(raw, ("question",))
    answer = _answer(raw, ("ground_truth", "answer"))
    images = _images(raw, ("decoded_image", "image"))
    answer_type = _text(raw, ("answer_type",))
    fields = {"answer_type": answer_type, "category": _text(raw, ("subject",)), "source_id": _text(raw, ("id",))}
    if _is_multiple_choice(answer_type):
        return _multiple_choice(question, question, answer, parse_options(question), images, **fields)
    return EvalItem(question, question, answer, images, **fields)


def _wemath(raw: dict, seed: int) -> EvalItem:
    """We-Math/We-Math testmini: every question is multiple choice, its options one text field (``option``:
    ``A. 30°; B. 60°; ...``), the picture ``image_path``; a multi-step problem's steps share an ``ID`` and differ
    in ``key``."""
    question = _question(raw, ("question",))
    answer = _answer(raw, ("answer",))
    images = _images(raw, ("image_path", "image", "images"))
    listed = _text(raw, ("option",))
    options = parse_options(listed) if listed else []
    shown = options_block(options) if options else listed
    problem = f"{question}\n{shown}" if shown else question
    key, identifier = _text(raw, ("key",)), _text(raw, ("ID", "id"))
    fields = {
        "category": _text(raw, ("knowledge concept",)),
        "source_id": f"{identifier}@{key}" if key else identifier,
    }
    return _multiple_choice(problem, question, answer, options, images, **fields)


def _logicvista(raw: dict, seed: int) -> EvalItem:
    """lscpku/LogicVista: every question is multiple choice, its options in its text or only in the picture; an
    answer may name several letters (``A, C``)."""
    question = _question(raw, ("question",))
    answer = _answer(raw, ("answer",))
    images = _images(raw, ("image", "image_path", "images"))
    fields = {"category": _text(raw, ("skill", "category")), "source_id": _text(raw, ("id",))}
    return _multiple_choice(question, question, answer, parse_options(question), images, **fields)


def _math500(raw: dict, seed: int) -> EvalItem:
    """HuggingFaceH4/MATH-500: ``problem`` and its final ``answer`` in LaTeX."""
    question = _question(raw, ("problem",))
    fields = {"category": _text(raw, ("subject",)), "source_id": _text(raw, ("unique_id", "id"))}
    return EvalItem(question, question, _answer(raw, ("answer",)), **fields)


def _aime(raw: dict, seed: int) -> EvalItem:
    """AIME 2024 / 2025: ``problem`` and an integer ``answer``; other uploads spell the keys ``Problem``/``Answer``
    (Maxwell-Jia/AIME_2024) or ``question`` (opencompass/AIME2025), which are read too."""
    question = _question(raw, ("problem", "Problem", "question", "Question"))
    answer = _answer(raw, ("answer", "Answer"))
    return EvalItem(question, question, answer, source_id=_text(raw, ("id", "ID", "problem_idx")))


GPQA_WRONG = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


def _gpqa(raw: dict, seed: int) -> EvalItem:
    """Idavidrein/gpqa, gpqa_diamond: the right answer and three wrong ones, shuffled by ``seed`` and the
    question into options A-D."""
    question = _question(raw, ("Question",))
    correct = _answer(raw, ("Correct Answer",))
    wrong = []
    for key in GPQA_WRONG:
        value = raw.get(key)
        if not isinstance(value, str | int | float) or isinstance(value, bool) or not str(value).strip():
            raise RowRejected(INVALID_CHOICES, f"{key!r} is {quote(value)}, expected the text of a wrong answer")
        wrong.append(str(value).strip())
    options, letter = shuffled_options(correct, wrong, seed, question)
    return EvalItem(
        problem=f"{question}\n{options_block(options)}",
        question=question,
        answer=letter,
        choices=tuple(options),
        question_type=MULTIPLE_CHOICE,
        category=_text(raw, ("Subdomain", "High-level domain")),
        source_id=_text(raw, ("Record ID",)),
    )


BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in (
        Benchmark("mathverse", "AI4Math/MathVerse", "testmini", "testmini", "math", _mathverse),
        Benchmark("mathvision", "MathLLMs/MathVision", None, "test", "math", _mathvision),
        Benchmark("mathvista", "AI4Math/MathVista", None, "testmini", "math", _mathvista),
        Benchmark("dynamath", "DynaMath/DynaMath_Sample", None, "sample_variant1", "math", _dynamath),
        Benchmark("wemath", "We-Math/We-Math", None, "testmini", "math", _wemath),
        Benchmark("logicvista", "lscpku/LogicVista", None, "test", "logic", _logicvista),
        Benchmark("aime24", "HuggingFaceH4/aime_2024", None, "train", "math", _aime),
        Benchmark("aime25", "math-ai/aime25", None, "test", "math", _aime),
        Benchmark("math500", "HuggingFaceH4/MATH-500", None, "test", "math", _math500),
        Benchmark("gpqa", "Idavidrein/gpqa", "gpqa_diamond", "train", "science", _gpqa, gated=True),
    )
}


def read_item(benchmark: Benchmark, raw: object, seed: int) -> EvalItem:
    """The benchmark's item for one raw row; a row that is no object is skipped as ``not_an_object``."""
    if not isinstance(raw, dict):
        raise RowRejected(NOT_AN_OBJECT, f"row is {type(raw).__name__}, expected an object")
    return benchmark.read(raw, seed)
