"""Raw GRAMMAR rows for tests: good rows in each upstream layout and a corpus of bad rows with known reasons."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

RAW_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def png_bytes(width: int = 40, height: int = 30, color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def good_mmrl_rows(count: int) -> list[dict]:
    rows = []
    for number in range(count):
        images = 1 + number % 2
        rows.append(
            {
                "problem": "<image>" * images + f" Question {number}: how many shapes?",
                "answer": str(number),
                "images": [{"bytes": png_bytes(30 + number, 20 + images), "path": None} for _ in range(images)],
                "dataset": ["iconqa", "geoqa", ""][number % 3],
            }
        )
    return rows


def good_textrl_rows(count: int) -> list[dict]:
    return [{"problem": f"What is {n} + {n}?", "answer": str(2 * n), "dataset": "math"} for n in range(count)]


def bad_mmrl_rows() -> list[tuple[dict, str]]:
    """(row, expected reason) pairs: one bad row per way a multimodal row can be broken."""
    good_image = {"bytes": png_bytes(), "path": None}
    truncated = png_bytes(64, 64)[:60]
    return [
        ({"problem": "<image> What?", "answer": None, "images": [good_image], "dataset": ""}, "missing_answer"),
        ({"problem": "<image> What?", "answer": "   ", "images": [good_image], "dataset": ""}, "missing_answer"),
        (
            {"problem": "<image> What?", "answer": "3", "images": [{"bytes": b"not an image", "path": None}]},
            "undecodable_image",
        ),
        (
            {"problem": "<image> What?", "answer": "3", "images": [{"bytes": truncated, "path": None}]},
            "undecodable_image",
        ),
        (
            {"problem": "<image> What?", "answer": "3", "images": [{"bytes": None, "path": "gone.png"}]},
            "undecodable_image",
        ),
        (
            {"problem": "<image> What?", "answer": "3", "images": [{"bytes": png_bytes(1000, 2), "path": None}]},
            "undecodable_image",
        ),
        ({"problem": "What is shown?", "answer": "3", "images": [good_image]}, "image_placeholder_mismatch"),
        ({"problem": "<image><image> Compare.", "answer": "3", "images": [good_image]}, "image_placeholder_mismatch"),
        ({"problem": "", "answer": "3", "images": []}, "missing_problem"),
    ]


def bad_textrl_rows() -> list[tuple[dict, str]]:
    return [
        ({"problem": "What is 1 + 1?", "answer": ""}, "missing_answer"),
        ({"problem": "What is 1 + 1?"}, "missing_answer"),
        ({"problem": "What is 1 + 1?", "answer": ["2", "two"]}, "invalid_answer"),
        ({"problem": "Look at <image> and answer.", "answer": "2"}, "image_placeholder_mismatch"),
        ({"answer": "2"}, "missing_problem"),
    ]


def coldstart_rows() -> list[dict]:
    """One good row of each layout, plus the LLaMA-Factory extras (system, history, messages-keyed sharegpt)."""
    trace = "<think>\n1 + 1 is 2.\n</think>\nThe answer is $\\boxed{2}$."
    return [
        {"instruction": "What is 1 + 1?", "input": "", "output": trace},
        {
            "instruction": "Add the numbers.",
            "input": "1 and 1",
            "output": trace,
            "system": "Be brief.",
            "history": [["Hi", "Hello!"]],
        },
        {"conversations": [{"from": "human", "value": "What is 1 + 1?"}, {"from": "gpt", "value": trace}]},
        {"messages": [{"from": "user", "value": "1 + 1?"}, {"from": "assistant", "value": trace}], "system": "Tutor."},
        {
            "messages": [
                {"role": "system", "content": "Think."},
                {"role": "user", "content": "1 + 1?"},
                {"role": "assistant", "content": trace},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "1 + "}, {"type": "text", "text": "1?"}]},
                {"role": "assistant", "content": "2"},
            ]
        },
    ]


def bad_coldstart_rows() -> list[tuple[object, str]]:
    return [
        ({"question": "What?", "reply": "No layout."}, "unknown_layout"),
        (["not", "an", "object"], "not_an_object"),
        ({"instruction": "What is 1 + 1?", "input": "", "output": ""}, "invalid_messages"),
        (
            {"conversations": [{"from": "human", "value": "Hi"}, {"from": "function_call", "value": "{}"}]},
            "invalid_messages",
        ),
        ({"conversations": [{"from": "human", "value": "Only a question."}]}, "no_assistant_turn"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "image": "x.png"}]},
                    {"role": "assistant", "content": "A cat."},
                ]
            },
            "invalid_messages",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "system", "content": "Late system."},
                    {"role": "assistant", "content": "Hello"},
                ]
            },
            "invalid_messages",
        ),
    ]


def write_parquet(path: Path, rows: list[dict]) -> Path:
    """Rows written as the upstream parquet stores them (images as {bytes, path} structs)."""
    columns = sorted({key for row in rows for key in row})
    fields = []
    for column in columns:
        if column == "images":
            fields.append((column, pa.list_(RAW_IMAGE)))
        else:
            fields.append((column, pa.string()))
    schema = pa.schema(fields)
    table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows], schema=schema)
    pq.write_table(table, path)
    return path


def write_json_array(path: Path, rows: list) -> Path:
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list, broken_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(row) for row in rows] + list(broken_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Hostile rows: each once crashed the converter. Deep enough to trip the JSON decoder's recursion guard at once.
DEEP_NESTING = 5000
HUGE_INTEGER_DIGITS = 5000


def hostile_json_lines() -> list[tuple[bytes, str]]:
    """(JSONL line, expected reason): lines that parse badly in ways other than a syntax error."""
    return [
        (b"[" * DEEP_NESTING + b"]" * DEEP_NESTING, "invalid_json"),
        (b'{"problem": "What is 1 + 1?", "answer": ' + b"1" * HUGE_INTEGER_DIGITS + b"}", "invalid_json"),
        (b'{"problem": "What is 1 + 1? \xff\xfe", "answer": "2"}', "invalid_json"),
    ]


def hostile_image_rows(image_path: str) -> list[tuple[dict, str]]:
    """(JSON-able mmrl row, expected reason): image fields of the wrong type; ``image_path`` is a good image."""
    rows = [
        [{"bytes": "not bytes but text", "path": None}],
        [{"bytes": 2**40, "path": None}],  # bytes(2**40) would try to allocate a terabyte
        [{"bytes": None, "path": 12}],
        [{"bytes": None, "path": [image_path]}],
        [{"bytes": None, "path": {"path": image_path}}],
    ]
    return [({"problem": "<image> What?", "answer": "3", "images": images}, "undecodable_image") for images in rows]


def hostile_python_rows() -> list[tuple[dict, str]]:
    """(row, expected reason): values only a Python-built dataset can hold, for the converter itself."""
    return [
        (
            {"problem": "<image> What?", "answer": "3", "images": [{"bytes": png_bytes(), "path": 5}]},
            "undecodable_image",
        ),
        ({"problem": "What is 10 to the 5000?", "answer": 10**HUGE_INTEGER_DIGITS}, "invalid_answer"),
    ]


def hostile_coldstart_rows() -> list[tuple[dict, str]]:
    return [
        (
            {"conversations": [{"from": ["human"], "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
            "invalid_messages",
        ),
        ({"conversations": [{"from": {"a": 1}, "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}, "invalid_messages"),
        (
            {"messages": [{"role": ["user"], "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
            "invalid_messages",
        ),
        (
            {"messages": [{"role": "assistant", "content": "Answer first."}, {"role": "user", "content": "Why?"}]},
            "invalid_messages",
        ),
    ]


def write_jsonl_bytes(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` grey pixels and whose pixel data is one empty row."""
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00"))
        + _png_chunk(b"IEND", b"")
    )


def png_with_broken_pixels(width: int = 64, height: int = 48) -> bytes:
    """A PNG with a valid header and checksums whose compressed pixel stream is garbage."""
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    pixels = bytearray(zlib.compress(b"\x00" * (height * (1 + 3 * width))))
    pixels[2:] = bytes((byte * 37 + 11) % 256 for byte in range(len(pixels) - 2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", bytes(pixels))
        + _png_chunk(b"IEND", b"")
    )


def corrupt_images() -> dict[str, bytes]:
    """Image bytes that every check must refuse, by kind: none of them decodes into a usable image."""
    return {
        "garbage": b"this is not an image at all",
        "truncated": png_bytes(64, 64)[:80],
        "broken_pixels": png_with_broken_pixels(),
        # 400 million pixels claimed in a 70-byte file: a decompression bomb refused from the header alone.
        "bomb": png_header_only(20_000, 20_000),
        # 100 million pixels: over PIL's bound (89 million) but under its hard limit, where PIL only warns.
        "large": png_header_only(10_000, 10_000),
    }
