"""Arrow schemas of the prepared parquet, fixed so every shard and both parts share one layout.

A fixed schema matters: verl concatenates its data files with ``datasets``, which refuses files whose types
differ (an all-null ``path`` column, say, is typed ``null`` when inferred).
"""

import pyarrow as pa

# One per image in the prompt's text; verl pairs each with the row's images in order.
IMAGE_PLACEHOLDER = "<image>"

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def rl_layout(extra_info: list[tuple[str, pa.DataType]]) -> pa.Schema:
    """verl's RL row: the prompt, its images, the ground truth, and ``extra_info`` with the given fields."""
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(MESSAGE)),
            ("images", pa.list_(IMAGE)),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", pa.struct(extra_info)),
        ]
    )


RL_SCHEMA = rl_layout(
    [
        ("split", pa.string()),
        ("index", pa.int64()),
        ("source", pa.string()),
        ("problem", pa.string()),
        ("answer", pa.string()),
    ]
)

# Benchmarks (``revisual-data prepare eval``): the RL layout, with what a multiple-choice row needs in extra_info.
# One schema for every benchmark, so verl can read several of them as one validation set.
EVAL_SCHEMA = rl_layout(
    [
        ("split", pa.string()),
        ("index", pa.int64()),
        ("benchmark", pa.string()),
        ("id", pa.string()),
        ("problem", pa.string()),
        ("answer", pa.string()),
        ("question_type", pa.string()),
        ("choices", pa.list_(pa.string())),
        ("answer_type", pa.string()),
        ("unit", pa.string()),
        ("category", pa.string()),
    ]
)

SFT_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("messages", pa.list_(MESSAGE)),
        ("extra_info", pa.struct([("split", pa.string()), ("index", pa.int64()), ("layout", pa.string())])),
    ]
)
