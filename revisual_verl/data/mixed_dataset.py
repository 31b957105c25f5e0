"""A verl ``RLHFDataset`` for batches that mix image rows and text rows, in one file or across several.

Use it with ``data.custom_cls.path=pkg://revisual_verl.data.mixed_dataset data.custom_cls.name=MixedModalRLDataset``.

What it adds to verl's class, which reads and concatenates the files itself:

* Files whose column types differ still concatenate: an all-null ``path`` typed ``null``, a ``datasets`` Image
  column beside a plain ``{bytes, path}`` one, integer beside float, a text file with no ``images`` column at all.
  ``datasets`` refuses all of these; here the schemas are unified first (arrow's permissive promotion), and a
  conflict that cannot be unified names the file and the column.
* A row whose ``<image>`` placeholders do not match its images is dropped with a counted warning at load time,
  where verl would fail an assertion in the middle of a training step.
* Every image is checked when the dataset is built, as the rollout will load it (header and pixel bound first,
  then a full decode to RGB, and Qwen-VL's aspect-ratio limit), and a row with an image that fails is dropped,
  counted in ``dropped_rows["undecodable_image"]``, whether or not verl's length filter runs. verl's own class
  keeps such a row until ``dataset[i]`` or the rollout's processor raises in the middle of an epoch (or, with the
  length filter on, drops it counted as too long).
* verl's length filter (``data.filter_overlong_prompts``) counts a row whose prompt raises while it is built
  (a message without a role, a null content, ...) as too long, printing a traceback per row. Here the filter
  measures each prompt as verl's does (chat template, tool schemas, processor and ``data.mm_processor_kwargs``)
  and keeps the same rows, but counts a prompt over ``max_prompt_length`` tokens in
  ``dropped_rows["overlong_prompt"]`` and one that cannot be built in ``dropped_rows["prompt_processing_error"]``,
  logging the first few of the latter with their exception.
* Image rows without a processor fail at construction with a message that says so; text-only files (stage 3)
  need no processor, with or without an empty ``images`` column.
"""

from __future__ import annotations

import copy
import logging
import os
from collections import Counter

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.utils.tokenizer import build_multimodal_processor_inputs, normalize_token_ids

from revisual_verl.data.images import ImageProblem, check_image_bytes, read_regular_file
from revisual_verl.data.schemas import IMAGE_PLACEHOLDER

logger = logging.getLogger(__name__)
# Rows per arrow batch when counting placeholders, to bound memory on large files.
COUNT_BATCH_ROWS = 65_536
# Rows per batch when checking images: their encoded bytes are in memory one batch at a time.
IMAGE_CHECK_BATCH_ROWS = 64
# Image strings the rollout fetches rather than reads from disk; they cannot be checked at load time.
REMOTE_IMAGE_PREFIXES = ("http://", "https://", "data:")
# Problems (undecodable images, prompts that cannot be built) logged row by row before the rest are only counted.
LOGGED_IMAGE_PROBLEMS = 5
# Columns the length filter's measurement writes: a prompt's token count (-1 where it failed) and why it failed.
PROMPT_LENGTH_COLUMN = "__revisual_prompt_length"
PROMPT_ERROR_COLUMN = "__revisual_prompt_error"
# Characters of an exception's message kept in the log.
LOGGED_ERROR_CHARS = 300


def _load_file(path: str) -> datasets.Dataset:
    if path.endswith(".parquet"):
        return datasets.load_dataset("parquet", data_files=path)["train"]
    if path.endswith((".json", ".jsonl")):
        return datasets.load_dataset("json", data_files=path)["train"]
    raise ValueError(f"Unsupported file format: {path} (use .parquet, .json or .jsonl)")


def _plain_features(features: datasets.Features) -> datasets.Features:
    """Features with every Image replaced by its storage struct, so images stay ``{bytes, path}`` dicts."""

    def plain(feature):
        if isinstance(feature, datasets.Image):
            return {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
        if isinstance(feature, datasets.List):
            return datasets.List(plain(feature.feature), length=feature.length)
        if isinstance(feature, datasets.LargeList):
            return datasets.LargeList(plain(feature.feature))
        if isinstance(feature, dict):
            return {key: plain(value) for key, value in feature.items()}
        return feature

    return datasets.Features({name: plain(feature) for name, feature in features.items()})


def unify_datasets(frames: list[datasets.Dataset], names: list[str]) -> datasets.Dataset:
    """Concatenate datasets whose schemas differ in ways that have one sensible common type."""
    frames = [frame.cast(_plain_features(frame.features)) for frame in frames]
    schemas = [frame.features.arrow_schema for frame in frames]
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ValueError(f"data files {names} have columns of conflicting types: {error}") from None
    target = datasets.Features.from_arrow_schema(unified)
    aligned = []
    for frame, name in zip(frames, names, strict=True):
        for column, feature in target.items():
            if column not in frame.column_names:
                frame = frame.add_column(column, [None] * len(frame), feature=feature)
        try:
            aligned.append(frame.cast(target))
        except (ValueError, TypeError, pa.ArrowInvalid) as error:
            raise ValueError(f"data file {name} cannot be cast to the common schema: {error}") from None
    return datasets.concatenate_datasets(aligned)


def placeholder_and_image_counts(table: pa.Table, prompt_key: str, image_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Per row: ``<image>`` placeholders in the prompt's text contents, and stored images; computed in arrow."""
    rows = table.num_rows
    images = np.zeros(rows, dtype=np.int64)
    if image_key in table.column_names:
        images = pc.fill_null(pc.list_value_length(table.column(image_key)), 0).to_numpy(zero_copy_only=False)
    prompts = table.column(prompt_key).combine_chunks()
    if not pa.types.is_list(prompts.type) and not pa.types.is_large_list(prompts.type):
        raise ValueError(f"column {prompt_key!r} must hold chat messages, found {prompts.type}")
    messages = pc.list_flatten(prompts)
    owners = pc.list_parent_indices(prompts).to_numpy(zero_copy_only=False)
    contents = pc.struct_field(messages, "content")
    if not pa.types.is_string(contents.type) and not pa.types.is_large_string(contents.type):
        raise ValueError(f"messages in {prompt_key!r} must hold text content, found {contents.type}")
    per_message = pc.fill_null(pc.count_substring(contents, IMAGE_PLACEHOLDER), 0).to_numpy(zero_copy_only=False)
    placeholders = np.bincount(owners, weights=per_message, minlength=rows).astype(np.int64)
    return placeholders, images


def image_problem(image: object) -> str | None:
    """Why the rollout could not use one stored image (None when it can), checked the way verl will load it.

    verl's dataset opens a ``{bytes, path}`` image from its bytes only (a path beside no bytes fails), and hands a
    string to the rollout's loader as a local path or a URL.
    """
    if isinstance(image, dict):
        data = image.get("bytes")
        if not isinstance(data, bytes | bytearray) or not data:
            return "has no bytes (verl's dataset reads a {bytes, path} image from its bytes only)"
    elif isinstance(image, str | os.PathLike):
        location = os.fspath(image)
        if location.startswith(REMOTE_IMAGE_PREFIXES):
            return None
        try:
            data = read_regular_file(location.removeprefix("file://"))
        except ImageProblem as problem:
            return str(problem)
    else:
        return f"is {type(image).__name__}, not a {{bytes, path}} image or a path"
    try:
        check_image_bytes(bytes(data))
    except ImageProblem as problem:
        return str(problem)
    return None


def _image_lists(table: pa.Table) -> list[object]:
    """The images column of a batch as Python values; a row whose value arrow cannot convert becomes an error."""
    column = table.column(0)
    try:
        return column.to_pylist()
    except Exception:  # noqa: BLE001  e.g. a path that is not UTF-8; only that row is lost
        values = []
        for row in range(len(column)):
            try:
                values.append(column[row].as_py())
            except Exception as error:  # noqa: BLE001  as above
                values.append(ImageProblem(f"its row cannot be read ({type(error).__name__}: {error})"))
        return values


class MixedModalRLDataset(RLHFDataset):
    """``RLHFDataset`` that unifies file schemas and checks image rows before training sees them."""

    def _read_files_and_tokenize(self):
        frames = [_load_file(path) for path in self.data_files]
        self.dataframe = unify_datasets(frames, [str(path) for path in self.data_files])
        self.dataframe, images = self._drop_mismatched_image_rows(self.dataframe)

        total = len(self.dataframe)
        if 0 < self.max_samples < total:
            if self.shuffle:
                rng = np.random.default_rng(*(() if self.seed is None else (self.seed,)))
                indices = rng.choice(total, size=self.max_samples, replace=False)
            else:
                indices = np.arange(self.max_samples)
            self.dataframe = self.dataframe.select(indices.tolist())
            images = images[indices]
        # Counted on the rows kept, so the counts and the processor check below speak of the data actually used.
        self.modality_counts = Counter({"image": int((images > 0).sum()), "text": int((images == 0).sum())})

        image_rows = self.modality_counts["image"]
        if image_rows and self.processor is None:
            raise ValueError(
                f"{image_rows} rows of {list(self.original_data_files)} carry images but no processor was given; "
                "use a vision-language model, or give only text data files for a text-only stage"
            )
        self.dataframe, images = self._drop_undecodable_image_rows(self.dataframe, images)
        self.modality_counts = Counter({"image": int((images > 0).sum()), "text": int((images == 0).sum())})
        image_rows = self.modality_counts["image"]
        if image_rows and self.filter_overlong_prompts:
            self._require_vision_utils()
        self.dataframe = self.maybe_filter_out_long_prompts(self.dataframe)

    def maybe_filter_out_long_prompts(self, dataframe: datasets.Dataset | None = None) -> datasets.Dataset:
        """The rows whose prompt can be built and fits ``max_prompt_length`` tokens (all rows with the filter off).

        Keeps the rows verl's filter keeps, but counts the others under their true reason in ``dropped_rows``:
        ``overlong_prompt`` or ``prompt_processing_error``. Runs on ``filter_overlong_prompts_workers`` processes.
        """
        frame = self.dataframe if dataframe is None else dataframe
        self.dropped_rows["overlong_prompt"] = 0
        self.dropped_rows["prompt_processing_error"] = 0
        if not self.filter_overlong_prompts or len(frame) == 0:
            return frame
        columns = [
            key
            for key in dict.fromkeys((self.prompt_key, self.image_key, self.video_key, self.audio_key))
            if key in frame.column_names
        ]
        measured = frame.select_columns(columns).map(
            self._measure_prompt,
            remove_columns=columns,
            features=datasets.Features(
                {PROMPT_LENGTH_COLUMN: datasets.Value("int64"), PROMPT_ERROR_COLUMN: datasets.Value("string")}
            ),
            num_proc=self.num_workers,
            desc=f"Measuring prompts against {self.max_prompt_length} tokens",
        )
        lengths = np.asarray(measured[PROMPT_LENGTH_COLUMN], dtype=np.int64)
        errors = list(measured[PROMPT_ERROR_COLUMN])
        failed = np.fromiter((error is not None for error in errors), dtype=bool, count=len(errors))
        overlong = ~failed & (lengths > self.max_prompt_length)
        self.dropped_rows["overlong_prompt"] = int(overlong.sum())
        self.dropped_rows["prompt_processing_error"] = int(failed.sum())
        for row in np.flatnonzero(failed)[:LOGGED_IMAGE_PROBLEMS]:
            logger.warning("dropping row %d: its prompt cannot be built (%s)", row, errors[row][:LOGGED_ERROR_CHARS])
        if failed.any():
            logger.warning(
                "dropped %d of %d rows whose prompt cannot be built (not counted as overlong)", failed.sum(), len(frame)
            )
        if overlong.any():
            logger.warning(
                "dropped %d of %d rows whose prompt is longer than %d tokens",
                overlong.sum(),
                len(frame),
                self.max_prompt_length,
            )
        keep = ~(failed | overlong)
        return frame if keep.all() else frame.select(np.flatnonzero(keep).tolist())

    def _measure_prompt(self, row: dict) -> dict:
        """One row's prompt length, or why its prompt cannot be built, as the length filter's measurement columns."""
        try:
            return {PROMPT_LENGTH_COLUMN: self.prompt_length(row), PROMPT_ERROR_COLUMN: None}
        except Exception as error:  # noqa: BLE001  any failure is this row's, counted and logged by the caller
            return {PROMPT_LENGTH_COLUMN: -1, PROMPT_ERROR_COLUMN: f"{type(error).__name__}: {error}"}

    def prompt_length(self, row: dict) -> int:
        """Tokens in a row's prompt as verl's length filter counts them; raises where the prompt cannot be built.

        With a processor, the prompt is the chat template applied to the row's messages with their images, videos
        and audios in place, and its tokens include every vision token (under ``data.mm_processor_kwargs``);
        without one, it is the tokenizer's chat template. Both take ``data.apply_chat_template_kwargs`` and the
        tool schemas. verl's ``_build_messages`` rewrites the row's messages in place.
        """
        template_kwargs = dict(self.apply_chat_template_kwargs or {})
        if self.tool_schemas is not None:
            template_kwargs["tools"] = self.tool_schemas
        if self.processor is None:
            for fixed in ("tokenize", "return_dict", "return_tensors"):
                template_kwargs.pop(fixed, None)
            token_ids = self.tokenizer.apply_chat_template(
                row[self.prompt_key], add_generation_prompt=True, tokenize=True, **template_kwargs
            )
            return len(normalize_token_ids(token_ids))
        messages = self._build_messages(row, key=self.prompt_key)
        text = self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **template_kwargs
        )
        images, videos, audios = self._process_multi_modal_info(messages, self.image_patch_size, self.config)
        if images is None and videos is None and audios is None:
            encoded = self.processor.tokenizer(text=text, add_special_tokens=False, return_attention_mask=False)
            return len(encoded["input_ids"])
        inputs = build_multimodal_processor_inputs(
            self.processor,
            text=[text],
            images=images,
            videos=videos,
            audio=audios,
            mm_processor_kwargs=self.mm_processor_kwargs,
        )
        return len(inputs["input_ids"][0])

    @staticmethod
    def _require_vision_utils() -> None:
        """Without qwen_vl_utils (which needs torchvision) no image row's prompt can be built, so the length
        filter would drop every image row (as too long in verl's filter, as failing to process here); fail
        instead, saying why."""
        try:
            import qwen_vl_utils  # noqa: F401
        except Exception as error:
            raise RuntimeError(
                "image rows need qwen_vl_utils (and torchvision) for the prompt-length filter and for rollouts, "
                f"and it does not import here: {error!r}. Install them, or set data.filter_overlong_prompts=false "
                "to load the data without the filter"
            ) from error

    def _drop_mismatched_image_rows(self, frame: datasets.Dataset) -> tuple[datasets.Dataset, np.ndarray]:
        """The rows whose placeholders match their images, and each kept row's image count."""
        counts = [
            placeholder_and_image_counts(table, self.prompt_key, self.image_key)
            for table in frame.with_format("arrow").iter(batch_size=COUNT_BATCH_ROWS)
        ]
        placeholders = np.concatenate([c[0] for c in counts]) if counts else np.zeros(0, dtype=np.int64)
        images = np.concatenate([c[1] for c in counts]) if counts else np.zeros(0, dtype=np.int64)
        matched = placeholders == images
        self.dropped_rows = Counter({"image_placeholder_mismatch": int((~matched).sum())})
        if not matched.all():
            logger.warning(
                "dropped %d rows whose <image> placeholders do not match their images (first at row %d)",
                self.dropped_rows["image_placeholder_mismatch"],
                int(np.flatnonzero(~matched)[0]),
            )
            frame = frame.select(np.flatnonzero(matched).tolist())
            images = images[matched]
        return frame, images

    def _drop_undecodable_image_rows(
        self, frame: datasets.Dataset, images: np.ndarray
    ) -> tuple[datasets.Dataset, np.ndarray]:
        """The rows all of whose images the rollout can decode, and each kept row's image count.

        Runs before verl's length filter, which would otherwise drop these rows counted as too long (or, with the
        filter off, keep them until a training step fails on them).
        """
        self.dropped_rows["undecodable_image"] = 0
        if not images.any() or self.image_key not in frame.column_names:
            return frame, images
        usable = np.ones(len(frame), dtype=bool)
        row = dropped = 0
        batches = frame.select_columns([self.image_key]).with_format("arrow").iter(batch_size=IMAGE_CHECK_BATCH_ROWS)
        for table in batches:
            for stored in _image_lists(table):
                problem = None
                if isinstance(stored, ImageProblem):
                    problem = str(stored)
                else:
                    for position, image in enumerate(stored or ()):
                        found = image_problem(image)
                        if found is not None:
                            problem = f"image {position}: {found}"
                            break
                if problem is not None:
                    usable[row] = False
                    dropped += 1
                    if dropped <= LOGGED_IMAGE_PROBLEMS:
                        logger.warning("dropping row %d: %s", row, problem)
                row += 1
        self.dropped_rows["undecodable_image"] = dropped
        if dropped:
            logger.warning(
                "dropped %d of %d rows with an image the rollout could not decode (not counted as overlong)",
                dropped,
                len(frame),
            )
            frame = frame.select(np.flatnonzero(usable).tolist())
            images = images[usable]
        return frame, images

    def split(self, num_splits: int):
        """Equal consecutive parts, like verl's ``split``, but of this class and without re-reading the files.

        verl's version builds plain ``RLHFDataset`` objects from the file list, which would lose the schema
        unification above; a shallow copy per part shares everything but the selected rows.
        """
        if not isinstance(num_splits, int) or num_splits <= 0:
            raise ValueError(f"num_splits must be a positive integer, got {num_splits}")
        size = len(self.dataframe) // num_splits
        if size == 0:
            raise ValueError(f"cannot split {len(self.dataframe)} rows into {num_splits} non-empty parts")
        parts = []
        for number in range(num_splits):
            part = copy.copy(self)
            part.dataframe = self.dataframe.select(range(number * size, (number + 1) * size))
            parts.append(part)
        return parts
