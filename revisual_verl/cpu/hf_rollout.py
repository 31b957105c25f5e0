"""``actor_rollout_ref.rollout.name=hf``: a rollout backend that generates with transformers on the CPU.

verl 0.9's rollouts are servers (vLLM, SGLang) that the agent loop calls token-in, token-out, and that
the actor's hybrid worker feeds new weights through a server adapter. This module plugs the same three
roles into verl's own registries, for a machine without GPUs:

- :class:`HFRolloutReplica` (``RolloutReplicaRegistry``): launches one :class:`HFRolloutServer` Ray actor
  per replica, on the node of the replica's first worker.
- :class:`HFRolloutServer`: holds a Hugging Face model on the CPU and answers ``generate`` with sampled
  token ids and their log-probabilities, under the rollout config's n/temperature/top_p/top_k and response
  length; images go through the model's processor. Requests that arrive together (the agent loop sends a
  step's at once) are generated as one left-padded batch, each row sampled from its own seed.
- :class:`HFServerAdapter` (``_ROLLOUT_REGISTRY[("hf", "async")]``): lives in the actor's hybrid worker;
  verl's naive weight sync hands it the actor's full tensors after every update, and it loads them into
  the server, so every rollout is on-policy.

The log-probabilities are those of the sampling distribution the actor recomputes: ``log_softmax`` of the
logits divided by the temperature (verl's actor divides by the same temperature), before top-p/top-k.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any

import ray
import torch
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica, TokenOutput

logger = logging.getLogger(__name__)

SERVER_NAME_PREFIX = "revisual_hf_rollout"


def server_name(replica_rank: int, suffix: str = "") -> str:
    return f"{SERVER_NAME_PREFIX}_{replica_rank}{suffix}"


def prompt_key(prompt_ids: list[int], image_data=None) -> str:
    """What makes two requests the same prompt: the token ids and the pixels of every image (prompts with
    the same text and different images have the same ids)."""
    digest = hashlib.sha256(",".join(map(str, prompt_ids)).encode())
    for image in image_data or ():
        digest.update(b"|image|")
        tobytes = getattr(image, "tobytes", None)
        digest.update(tobytes() if callable(tobytes) else repr(image).encode())
        digest.update(repr(getattr(image, "size", None)).encode())
    return digest.hexdigest()


def request_seed(base_seed: int, weights_version: int | None, key: str, occurrence: int) -> int:
    """The sampling seed of the ``occurrence``-th request for prompt ``key`` under these weights.

    Fixed by what the server sees, not by verl's request ids (random, or one shared id per batch under
    ``full_determinism``): the n rollouts of a prompt get different seeds, and a rerun of a step (a
    resume) draws the same n responses for each prompt.
    """
    digest = hashlib.sha256(f"{base_seed}|{weights_version}|{occurrence}|{key}".encode())
    return int.from_bytes(digest.digest()[:8], "little") & ((1 << 63) - 1)


class SeededSampler:
    """A logits processor that makes transformers' greedy search draw samples, each row from its own seed.

    Per row: logits / temperature, top-k and top-p as vLLM reads them, then the Gumbel-max draw
    ``argmax(scores - log E)`` with ``E ~ Exp(1)`` from the row's own generator, which picks token i with
    probability softmax(scores)_i. A row's draws depend only on its seed and its own logits, so a request
    samples the same tokens whichever requests share its batch (up to float32 noise in the logits).
    """

    def __init__(self, temperature: float, top_p: float, top_k: int, seeds: list[int]):
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    def filtered(self, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float() / self.temperature
        if 0 < self.top_k < scores.shape[-1]:
            kth = torch.topk(scores, self.top_k, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, order = torch.sort(scores, dim=-1, descending=True)
            probs = torch.softmax(ordered, dim=-1)
            mass_before = probs.cumsum(dim=-1) - probs
            drop = mass_before >= self.top_p
            drop[..., 0] = False  # the most likely token always stays
            scores = scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
        return scores

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = self.filtered(scores)
        noise = torch.stack(
            [torch.empty(scores.shape[-1]).exponential_(generator=generator) for generator in self.generators]
        )
        return scores - noise.log()


@dataclass
class _Request:
    prompt_ids: list[int]
    sampling: tuple[float, float, int]  # temperature, top_p, top_k
    max_new: int
    images: list | None
    mm_processor_kwargs: dict | None
    seed: int
    result: asyncio.Future


class HFRolloutServer:
    """A Ray actor holding one Hugging Face model on the CPU; verl's agent loop calls ``generate``.

    verl's agent loop sends every request of a batch at once; the server gathers the requests that are waiting
    and generates them as one left-padded batch (per sampling setting), so a step costs about as many model
    passes as its longest response, not one pass per token of every response.
    """

    # Rows per model call: bounds the padded batch's memory on a small machine.
    MAX_BATCH_ROWS = 256

    def __init__(self, config, model_config, replica_rank: int = 0):
        from transformers import AutoConfig
        from verl.utils import hf_processor, hf_tokenizer
        from verl.utils.fs import copy_to_local
        from verl.workers.rollout.utils import get_vision_placeholder_token_ids

        self.config = config
        self.replica_rank = replica_rank
        # The replica hands over the model section as verl's config holds it (a DictConfig or the dataclass).
        path = getattr(model_config, "local_path", None) or copy_to_local(model_config.path)
        trust_remote_code = bool(getattr(model_config, "trust_remote_code", False))
        self.tokenizer = hf_tokenizer(path, trust_remote_code=trust_remote_code)
        self.processor = hf_processor(path, trust_remote_code=trust_remote_code)
        hf_config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        self.model = self._load_model(path, hf_config, trust_remote_code)
        self.model.eval()
        self.eos_token_ids = self._eos_token_ids(hf_config)
        self.pad_token_id = self.tokenizer.pad_token_id
        if self.pad_token_id is None:
            self.pad_token_id = min(self.eos_token_ids)
        # As verl's vLLM server does: a sampled image/video placeholder has no pixels behind it and breaks
        # every consumer downstream (verl.workers.rollout.utils.get_vision_placeholder_token_ids).
        self.banned_token_ids = get_vision_placeholder_token_ids(self.processor) if self.processor is not None else []
        self.weights_version: int | None = None
        self.weight_updates = 0
        # (weights version, prompt) -> requests seen: the occurrence part of each request's seed.
        self._occurrences: dict[tuple[int | None, str], int] = {}
        self._pending: list[_Request] = []
        self._flusher: asyncio.Task | None = None
        # One model call at a time (generation or a weight update): torch already uses every core for one.
        self._lock = asyncio.Lock()
        self.batches_run = 0

    @staticmethod
    def _load_model(path, hf_config, trust_remote_code):
        from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

        kwargs = {"dtype": torch.float32, "trust_remote_code": trust_remote_code, "attn_implementation": "sdpa"}
        if getattr(hf_config, "vision_config", None) is not None:
            return AutoModelForImageTextToText.from_pretrained(path, **kwargs)
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)

    def _eos_token_ids(self, hf_config) -> set[int]:
        ids = set()
        for source in (
            getattr(self.model, "generation_config", None),
            getattr(hf_config, "text_config", None),
            hf_config,
        ):
            value = getattr(source, "eos_token_id", None) if source is not None else None
            if value is None:
                continue
            ids.update(value if isinstance(value, list | tuple) else [value])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    # --- generation -------------------------------------------------------------------------------------

    def _max_new_tokens(self, prompt_len: int, sampling_params: dict) -> int:
        budget = self.config.prompt_length + self.config.response_length - prompt_len
        limit = sampling_params.pop("max_tokens", None) or sampling_params.pop("max_new_tokens", None)
        limit = min(limit or self.config.response_length, self.config.response_length, budget)
        if limit < 1:
            raise ValueError(
                f"prompt of {prompt_len} tokens leaves no room to generate within prompt_length + response_length "
                f"({self.config.prompt_length} + {self.config.response_length})"
            )
        return limit

    def _model_inputs(self, prompt_ids: list[int], image_data, mm_processor_kwargs=None) -> dict[str, torch.Tensor]:
        inputs = {"input_ids": torch.tensor([prompt_ids], dtype=torch.long)}
        if image_data:
            if self.processor is None:
                raise ValueError("the prompt has images but the model has no processor")
            # verl's data.mm_processor_kwargs (e.g. min/max pixels), as the agent loop used them for the prompt
            # ids: the features must come from the same resize, or the image tokens and features disagree.
            pixels = self.processor.image_processor(
                images=list(image_data), return_tensors="pt", **dict(mm_processor_kwargs or {})
            )
            inputs.update({key: value for key, value in pixels.items() if isinstance(value, torch.Tensor)})
        return inputs

    def _batch_inputs(self, requests: list[_Request]) -> dict[str, torch.Tensor]:
        """Left-padded prompts with their attention mask, and the pixels of every image in row order."""
        width = max(len(request.prompt_ids) for request in requests)
        input_ids = torch.full((len(requests), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(requests), width), dtype=torch.long)
        vision: dict[str, list[torch.Tensor]] = {}
        for row, request in enumerate(requests):
            length = len(request.prompt_ids)
            input_ids[row, width - length :] = torch.tensor(request.prompt_ids, dtype=torch.long)
            attention_mask[row, width - length :] = 1
            extra = self._model_inputs(request.prompt_ids, request.images, request.mm_processor_kwargs)
            for key, value in extra.items():
                if key != "input_ids":
                    vision.setdefault(key, []).append(value)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        inputs.update({key: torch.cat(values) for key, values in vision.items()})
        return inputs

    @torch.no_grad()
    def _sample_batch(self, requests: list[_Request]) -> list[tuple[list[int], list[float]]]:
        """One batched generation; per request its new tokens and their log-probabilities under the
        temperature-scaled distribution of the whole vocabulary (what verl's actor recomputes; banned placeholders
        are only kept out of the draw, as vLLM's raw log-probs do)."""
        from transformers import GenerationConfig, LogitsProcessorList

        temperature, top_p, top_k = requests[0].sampling
        greedy = temperature <= 0
        inputs = self._batch_inputs(requests)
        processors = LogitsProcessorList()
        if not greedy:
            processors.append(SeededSampler(temperature, top_p, top_k, [request.seed for request in requests]))
        # A fresh generation config: a model's own defaults (repetition penalty, sampling) must not act.
        generation = GenerationConfig(
            do_sample=False,
            max_new_tokens=max(request.max_new for request in requests),
            eos_token_id=sorted(self.eos_token_ids),
            pad_token_id=self.pad_token_id,
            suppress_tokens=self.banned_token_ids or None,
            output_logits=True,
            return_dict_in_generate=True,
        )
        out = self.model.generate(**inputs, generation_config=generation, logits_processor=processors)
        width = inputs["input_ids"].shape[1]
        scale = 1.0 if greedy else temperature
        log_probs_all = torch.log_softmax(torch.stack(out.logits, dim=1).float() / scale, dim=-1)
        results = []
        for row, request in enumerate(requests):
            tokens = out.sequences[row, width : width + len(out.logits)].tolist()[: request.max_new]
            for position, token in enumerate(tokens):
                if token in self.eos_token_ids:
                    tokens = tokens[: position + 1]
                    break
            log_probs = log_probs_all[row, torch.arange(len(tokens)), torch.tensor(tokens, dtype=torch.long)]
            results.append((tokens, log_probs.tolist()))
        return results

    async def _flush(self):
        """Generate what is waiting, in batches; requests that arrive meanwhile wait for the next batch."""
        async with self._lock:
            # verl's agent loop sends a batch's requests in one burst: give the burst a few turns of the event
            # loop to arrive, so that it becomes one batch.
            seen = -1
            while seen != len(self._pending):
                seen = len(self._pending)
                for _ in range(4):
                    await asyncio.sleep(0)
            while self._pending:
                taken, self._pending = self._pending, []
                groups: dict[tuple, list[_Request]] = {}
                for request in taken:
                    key = (request.sampling, repr(sorted((request.mm_processor_kwargs or {}).items())))
                    groups.setdefault(key, []).append(request)
                for group in groups.values():
                    for start in range(0, len(group), self.MAX_BATCH_ROWS):
                        chunk = group[start : start + self.MAX_BATCH_ROWS]
                        try:
                            results = await asyncio.to_thread(self._sample_batch, chunk)
                        except Exception as error:  # noqa: BLE001  each waiting request gets the error
                            for request in chunk:
                                if not request.result.done():
                                    request.result.set_exception(error)
                            continue
                        self.batches_run += 1
                        for request, result in zip(chunk, results, strict=True):
                            if not request.result.done():
                                request.result.set_result(result)
        self._flusher = None
        if self._pending:
            self._flusher = asyncio.create_task(self._flush())

    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: list[Any] | None = None,
        video_data: list[Any] | None = None,
        **kwargs: Any,
    ) -> TokenOutput:
        if video_data:
            raise NotImplementedError("the hf rollout does not take videos")
        prompt_ids = [int(token) for token in prompt_ids]
        params = dict(sampling_params)
        max_new = self._max_new_tokens(len(prompt_ids), params)
        if image_data and self.processor is None:
            raise ValueError("the prompt has images but the model has no processor")
        temperature = float(params.get("temperature", 1.0))
        top_p = float(params.get("top_p", 1.0))
        top_k = int(params.get("top_k", -1) or -1)
        # Seeds are fixed in arrival order, as one request at a time would see them.
        key = prompt_key(prompt_ids, image_data)
        occurrence = self._occurrences.get((self.weights_version, key), 0)
        self._occurrences[(self.weights_version, key)] = occurrence + 1
        request = _Request(
            prompt_ids=prompt_ids,
            sampling=(temperature, top_p, top_k) if temperature > 0 else (0.0, 1.0, -1),
            max_new=max_new,
            images=list(image_data) if image_data else None,
            mm_processor_kwargs=kwargs.get("mm_processor_kwargs"),
            seed=request_seed(self.config.seed, self.weights_version, key, occurrence),
            result=asyncio.get_running_loop().create_future(),
        )
        self._pending.append(request)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        tokens, log_probs = await request.result
        stop = "completed" if tokens and tokens[-1] in self.eos_token_ids else "length"
        return TokenOutput(
            token_ids=tokens,
            log_probs=log_probs,
            stop_reason=stop,
            num_preempted=0,
            extra_fields={"global_steps": self.weights_version},
        )

    # --- weights ----------------------------------------------------------------------------------------

    async def update_weights(self, named_tensors: list[tuple[str, torch.Tensor]], global_steps: int | None = None):
        """Load the actor's full tensors (Hugging Face names) into the model; every parameter must be named."""
        async with self._lock:
            state = self.model.state_dict()
            mapping = getattr(self.model, "_checkpoint_conversion_mapping", None) or {}
            unknown, loaded = [], set()
            for name, tensor in named_tensors:
                target = name if name in state else _convert_key(name, mapping)
                if target not in state:
                    unknown.append(name)
                    continue
                state[target].copy_(tensor.to(state[target].dtype))
                loaded.add(target)
            missing = [name for name in state if name not in loaded and not _is_tied(self.model, name)]
            if unknown or missing:
                raise RuntimeError(
                    f"hf rollout: weight update does not match the model: unknown {unknown[:5]} "
                    f"({len(unknown)}), not updated {missing[:5]} ({len(missing)})"
                )
            self.weights_version = global_steps
            self.weight_updates += 1
            self._occurrences.clear()
        return {"loaded": len(loaded)}

    def weights_digest(self) -> str:
        """sha256 over the model's parameters, for tests that follow the weights."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()

    def status(self) -> dict:
        return {"weights_version": self.weights_version, "weight_updates": self.weight_updates}

    # --- the server interface verl's replicas and checkpoint manager call: nothing to do on a CPU -------

    async def wake_up(self):
        pass

    async def sleep(self):
        pass

    async def abort_all_requests(self, reject_request: bool = False):
        return {}

    async def resume_generation(self):
        pass

    async def clear_kv_cache(self):
        pass

    async def release_kv_cache(self):
        pass

    async def resume_kv_cache(self):
        pass

    async def start_profile(self, **kwargs):
        pass

    async def stop_profile(self):
        pass


def _convert_key(name: str, mapping: dict) -> str:
    import re

    for pattern, replacement in mapping.items():
        converted, count = re.subn(pattern, replacement, name)
        if count:
            return converted
    return name


def _is_tied(model, name: str) -> bool:
    tied = getattr(model, "_tied_weights_keys", None) or {}
    keys = tied.keys() if isinstance(tied, dict) else tied
    return name in set(keys) and bool(getattr(model.config, "tie_word_embeddings", False))


class HFRolloutReplica(RolloutReplica):
    """One :class:`HFRolloutServer` per replica, beside the replica's first worker."""

    async def launch_servers(self):
        if not self.workers:
            raise RuntimeError("hf rollout: the replica has no workers")
        node_id = await self.workers[0].__ray_call__.remote(lambda worker: ray.get_runtime_context().get_node_id())
        name = server_name(self.replica_rank, self.name_suffix)
        server = (
            ray.remote(HFRolloutServer)
            .options(
                name=name,
                num_cpus=0,
                max_concurrency=self.max_concurrency,
                scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                    node_id=node_id, soft=False
                ),
            )
            .remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        )
        await server.status.remote()
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"hf-rollout-{self.replica_rank}{self.name_suffix}"


class HFServerAdapter(BaseRollout):
    """In the actor's hybrid worker: forwards verl's weight sync to this rank's rollout server."""

    def __init__(self, config, model_config, device_mesh, replica_rank: int = -1, **kwargs):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        world = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        self.replica_rank = rank // world if replica_rank == -1 else replica_rank
        self.rollout_rank = rank % world
        self.is_leader_rank = self.rollout_rank == 0
        self._server = None

    def _server_handle(self):
        if self._server is None:
            self._server = ray.get_actor(server_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]):
        pass

    async def release(self):
        pass

    async def update_weights(
        self, weights, wire_format: str = "named_tensors", global_steps: int | None = None, **kwargs
    ):
        if wire_format != "named_tensors":
            raise NotImplementedError(f"hf rollout: weight wire format {wire_format!r} is not supported")
        if kwargs.get("peft_config") is not None:
            raise NotImplementedError(
                "hf rollout: LoRA adapters are not supported; set actor_rollout_ref.model.lora.merge=True"
            )
        # Every rank walks the generator (FSDP gathers collectively); the leader ships the tensors.
        named = [(name, tensor.detach().to("cpu", copy=True)) for name, tensor in weights]
        if self.is_leader_rank:
            await self._server_handle().update_weights.remote(named, global_steps)
