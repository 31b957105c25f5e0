"""The paper's Table 2 (ReVisual-R1-7B), in its column order, and what each column measured."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperColumn:
    benchmark: str  # the data_source `revisual-data prepare eval --benchmark` writes
    title: str  # the column's heading in Table 2
    score: float  # ReVisual-R1-7B, percent
    split: str  # the split the paper reports, as far as the paper and the authors' scripts say


# Table 2 of the paper, ReVisual-R1-7B (average 53.1). ``split`` is the Hugging Face split the paper's figure
# corresponds to, as `revisual-data prepare eval` records it in report.json (docs/eval.md): MathVerse testmini
# and MathVision test as the authors' evaluation code loads them; AIME24 and GPQA Diamond are published as a
# "train" split. DynaMath's figure is the worst case over its ten variants, which no single split scores.
TABLE2 = (
    PaperColumn("mathverse", "MathVerse", 53.6, "testmini"),
    PaperColumn("mathvision", "MathVision", 48.8, "test"),
    PaperColumn("mathvista", "MathVista", 73.1, "testmini"),
    PaperColumn("dynamath", "DynaMath", 27.5, "worst case over sample_variant1-10"),
    PaperColumn("wemath", "WeMath", 42.0, "testmini"),
    PaperColumn("logicvista", "LogicVista", 52.3, "test"),
    PaperColumn("aime24", "AIME24", 53.3, "train"),
    PaperColumn("aime25", "AIME25", 43.3, "test"),
    PaperColumn("gpqa", "GPQA", 47.5, "train"),
    PaperColumn("math500", "MATH500", 89.2, "test"),
)
PAPER_AVERAGE = 53.1
BY_BENCHMARK = {column.benchmark: column for column in TABLE2}
