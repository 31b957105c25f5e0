"""``actor_rollout_ref.rollout.name=hf``: a rollout backend that generates with transformers on the CPU.

verl 0.9's rollouts are servers (vLLM, SGLang) that the agent loop calls token-in, token-out, and that
the actor's hybrid worker feeds new weights through a server adapter. This module plugs the same three
roles into verl's own registries, for a machine without GPUs:

- :class:`HFRolloutReplica` (``RolloutReplicaRegistry``): launches one :class:`HFRolloutServer` Ray actor
  per replica, on the node of the replica's first worker.
- :class:`HFRolloutServer`: holds a Hugging Face model on the CPU and answers ``generate`` with sampled
  token ids and their log-probabilities, under the rollout config's n/temperature/top_p/top_k and response
  length; images go through the model's processor.
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


class HFRolloutServer:
    """A Ray actor holding one Hugging Face model on the CPU; verl's agent loop calls ``generate``."""

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
        # As verl's vLLM server does: a sampled image/video placeholder has no pixels behind it and breaks
        # every consumer downstream (verl.workers.rollout.utils.get_vision_placeholder_token_ids).
        self.banned_token_ids = get_vision_placeholder_token_ids(self.processor) if self.processor is not None else []
        self.weights_version: int | None = None
        self.weight_updates = 0
        # (weights version, prompt) -> requests seen: the occurrence part of each request's seed.
        self._occurrences: dict[tuple[int | None, str], int] = {}
        # One generation at a time: torch already uses every core for one.
        self._lock = asyncio.Lock()

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

    @torch.no_grad()
    def _sample(
        self, prompt_ids: list[int], sampling_params: dict, image_data, seed: int, mm_processor_kwargs=None
    ) -> tuple[list[int], list[float]]:
        """transformers' sampling (temperature, top-p, top-k as vLLM reads them); returns the new tokens and
        their log-probabilities under the temperature-scaled distribution of the whole vocabulary (what verl's
        actor recomputes; banned placeholders are only kept out of the draw, as vLLM's raw log-probs do)."""
        temperature = float(sampling_params.get("temperature", 1.0))
        top_p = float(sampling_params.get("top_p", 1.0))
        top_k = int(sampling_params.get("top_k", -1) or -1)
        max_new = self._max_new_tokens(len(prompt_ids), sampling_params)
        inputs = self._model_inputs(prompt_ids, image_data, mm_processor_kwargs)
        greedy = temperature <= 0
        sampling = {} if greedy else {"temperature": temperature, "top_p": top_p, "top_k": max(top_k, 0)}
        # The lock around this call makes the process-wide generator ours for the whole request.
        torch.manual_seed(seed)
        out = self.model.generate(
            **inputs,
            attention_mask=torch.ones_like(inputs["input_ids"]),
            do_sample=not greedy,
            **sampling,
            max_new_tokens=max_new,
            eos_token_id=sorted(self.eos_token_ids),
            pad_token_id=self.tokenizer.pad_token_id,
            suppress_tokens=self.banned_token_ids or None,
            output_logits=True,
            return_dict_in_generate=True,
        )
        tokens = out.sequences[0, len(prompt_ids) :].tolist()
        scale = 1.0 if greedy else temperature
        log_probs = [
            float(torch.log_softmax(step_logits[0].float() / scale, dim=-1)[token])
            for step_logits, token in zip(out.logits, tokens, strict=False)
        ]
        return tokens[: len(log_probs)], log_probs

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
        async with self._lock:
            key = prompt_key(prompt_ids, image_data)
            occurrence = self._occurrences.get((self.weights_version, key), 0)
            self._occurrences[(self.weights_version, key)] = occurrence + 1
            seed = request_seed(self.config.seed, self.weights_version, key, occurrence)
            tokens, log_probs = await asyncio.to_thread(
                self._sample, prompt_ids, params, image_data, seed, kwargs.get("mm_processor_kwargs")
            )
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
