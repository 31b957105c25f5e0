"""The hf rollout server: sampling as the rollout config says, log-probs the actor would compute, weight updates."""

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from revisual_verl.cpu.hf_rollout import HFRolloutServer, prompt_key, request_seed

PROMPT = [{"role": "user", "content": "What is 2 + 2? Put the answer in \\boxed{}."}]
IMAGE_PROMPT = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many sides?"}]}]


def rollout_config(response_length=12, prompt_length=256, seed=0):
    return SimpleNamespace(response_length=response_length, prompt_length=prompt_length, seed=seed)


@pytest.fixture(scope="module")
def server(tiny_vlm_dir):
    return HFRolloutServer(rollout_config(), SimpleNamespace(path=str(tiny_vlm_dir), local_path=str(tiny_vlm_dir)))


def prompt_ids(server, messages=PROMPT, images=None):
    text = server.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = server.processor(text=[text], images=images, return_tensors="pt")
    return inputs["input_ids"][0].tolist(), inputs


def generate(server, ids, params=None, images=None):
    params = params or {"temperature": 1.0, "top_p": 1.0, "top_k": -1}
    return asyncio.run(server.generate(ids, dict(params), "request", image_data=images))


def recomputed_log_probs(model, inputs, tokens, temperature):
    """What verl's actor computes for the same tokens: one forward, logits / temperature, log-softmax."""
    prompt_len = inputs["input_ids"].shape[1]
    ids = torch.cat([inputs["input_ids"], torch.tensor([tokens])], dim=1)
    extra = {k: v for k, v in inputs.items() if k in ("pixel_values", "image_grid_thw")}
    with torch.no_grad():
        logits = model(input_ids=ids, **extra).logits[0].float()
    log_probs = torch.log_softmax(logits[prompt_len - 1 : -1] / temperature, dim=-1)
    return log_probs.gather(-1, torch.tensor(tokens)[:, None])[:, 0]


# Tolerance of the rollout's log-probs against a full forward of the same model: the two differ only by
# the KV cache's order of float32 operations.
LOG_PROB_TOLERANCE = 1e-4


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_log_probs_equal_a_recomputation_of_the_same_tokens(server, temperature):
    ids, inputs = prompt_ids(server)
    out = generate(server, ids, {"temperature": temperature, "top_p": 1.0, "top_k": -1})
    assert len(out.token_ids) == len(out.log_probs) > 0
    expected = recomputed_log_probs(server.model, inputs, out.token_ids, temperature)
    assert torch.allclose(torch.tensor(out.log_probs), expected, atol=LOG_PROB_TOLERANCE)


def test_images_go_through_the_processor(server):
    image = Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype("uint8"))
    ids, inputs = prompt_ids(server, IMAGE_PROMPT, images=[image])
    out = generate(server, ids, images=[image])
    expected = recomputed_log_probs(server.model, inputs, out.token_ids, 1.0)
    assert torch.allclose(torch.tensor(out.log_probs), expected, atol=LOG_PROB_TOLERANCE)
    # The same tokens scored without the image are scored differently: the pixels were used.
    without = recomputed_log_probs(server.model, {"input_ids": inputs["input_ids"]}, out.token_ids, 1.0)
    assert not torch.allclose(without, expected, atol=LOG_PROB_TOLERANCE)


def test_response_length_is_bounded_and_stop_reason_reported(server):
    ids, _ = prompt_ids(server)
    for _ in range(4):
        out = generate(server, ids)
        assert 1 <= len(out.token_ids) <= 12
        ended = out.token_ids[-1] in server.eos_token_ids
        assert out.stop_reason == ("completed" if ended else "length")
        assert not any(token in server.eos_token_ids for token in out.token_ids[:-1])
    short = generate(server, ids, {"temperature": 1.0, "max_tokens": 3})
    assert len(short.token_ids) <= 3


def test_prompt_that_leaves_no_room_is_refused(tiny_vlm_dir):
    small = HFRolloutServer(rollout_config(response_length=4, prompt_length=8), SimpleNamespace(path=str(tiny_vlm_dir)))
    with pytest.raises(ValueError, match="no room"):
        generate(small, list(range(40, 60)))


def test_greedy_is_the_argmax_and_repeatable(server):
    ids, inputs = prompt_ids(server)
    first = generate(server, ids, {"temperature": 0.0})
    second = generate(server, ids, {"temperature": 0.0})
    assert first.token_ids == second.token_ids
    with torch.no_grad():
        logits = server.model(input_ids=inputs["input_ids"]).logits[0, -1]
    assert first.token_ids[0] == int(torch.argmax(logits))


def test_top_k_one_is_greedy(server):
    ids, _ = prompt_ids(server)
    greedy = generate(server, ids, {"temperature": 0.0})
    top1 = generate(server, ids, {"temperature": 1.0, "top_p": 1.0, "top_k": 1})
    assert top1.token_ids == greedy.token_ids


def test_the_n_rollouts_of_a_prompt_differ_and_a_rerun_repeats_them(tiny_vlm_dir):
    def rollouts():
        fresh = HFRolloutServer(rollout_config(), SimpleNamespace(path=str(tiny_vlm_dir)))
        ids, _ = prompt_ids(fresh)
        return [tuple(generate(fresh, ids).token_ids) for _ in range(4)]

    first = rollouts()
    assert len(set(first)) > 1, "the rollouts of one prompt must not all be the same sample"
    assert rollouts() == first


def test_seeds_depend_on_occurrence_weights_and_prompt():
    key = prompt_key([5, 6, 7])
    base = request_seed(0, 1, key, 0)
    assert base == request_seed(0, 1, prompt_key([5, 6, 7]), 0)
    others = {request_seed(0, 1, key, 1), request_seed(0, 2, key, 0), request_seed(0, 1, prompt_key([5, 6]), 0)}
    assert base not in others and len(others) == 3


def test_prompts_with_the_same_text_and_different_images_are_different_prompts():
    # Their token ids are the same (one placeholder run per image): only the pixels tell them apart, and
    # mixing their rollouts up would pair responses with the wrong image on a resume.
    red, blue = Image.new("RGB", (28, 28), "red"), Image.new("RGB", (28, 28), "blue")
    assert prompt_key([1, 2], [red]) != prompt_key([1, 2], [blue])
    assert prompt_key([1, 2], [red]) == prompt_key([1, 2], [Image.new("RGB", (28, 28), "red")])


def test_placeholder_tokens_are_never_sampled(server):
    assert server.banned_token_ids, "a vision-language model has image/video placeholders to ban"
    ids, _ = prompt_ids(server)
    # Make the image placeholder by far the most likely token: it must still never be drawn.
    head = server.model.lm_head.weight
    saved = head.data.clone()
    try:
        head.data[server.banned_token_ids[0]] = head.data.mean(0) + 50.0 * head.data.std()
        for _ in range(3):
            out = generate(server, ids)
            assert not set(out.token_ids) & set(server.banned_token_ids)
    finally:
        head.data.copy_(saved)


def test_weight_update_changes_what_is_sampled_and_scored(tiny_vlm_dir):
    from transformers import AutoModelForImageTextToText

    server = HFRolloutServer(rollout_config(), SimpleNamespace(path=str(tiny_vlm_dir)))
    ids, inputs = prompt_ids(server)
    before = server.weights_digest()
    trained = AutoModelForImageTextToText.from_pretrained(tiny_vlm_dir)
    with torch.no_grad():
        for param in trained.parameters():
            param.add_(0.05 * torch.randn_like(param))
    result = asyncio.run(server.update_weights(list(trained.state_dict().items()), global_steps=3))
    assert result["loaded"] == len(server.model.state_dict())
    assert server.weights_digest() != before
    assert server.status() == {"weights_version": 3, "weight_updates": 1}
    out = generate(server, ids)
    expected = recomputed_log_probs(trained, inputs, out.token_ids, 1.0)
    assert torch.allclose(torch.tensor(out.log_probs), expected, atol=LOG_PROB_TOLERANCE)


def test_weight_update_with_a_name_the_model_lacks_is_an_error(tiny_vlm_dir):
    server = HFRolloutServer(rollout_config(), SimpleNamespace(path=str(tiny_vlm_dir)))
    named = list(server.model.state_dict().items())
    with pytest.raises(RuntimeError, match="unknown"):
        asyncio.run(server.update_weights(named + [("not.a.weight", torch.zeros(1))]))
    with pytest.raises(RuntimeError, match="not updated"):
        asyncio.run(server.update_weights(named[1:]))


def test_images_are_resized_with_verls_mm_processor_kwargs(server):
    """verl passes data.mm_processor_kwargs to the rollout: the features follow the same resize as the prompt."""
    image = Image.new("RGB", (300, 300), (10, 200, 30))
    plain = server._model_inputs([1, 2], [image])
    bounded = server._model_inputs([1, 2], [image], {"min_pixels": 262144, "max_pixels": 4194304})
    assert plain["image_grid_thw"].tolist() == [[1, 2, 2]]  # the tiny processor's own 56x56 bound
    assert bounded["image_grid_thw"].tolist() == [[1, 38, 38]]  # 532 x 532 >= 262,144 pixels


def generate_together(server, requests):
    """Send several requests at once, as verl's agent loop does; returns their outputs in order."""

    async def burst():
        return await asyncio.gather(
            *(
                server.generate(ids, dict(params), f"r{i}", image_data=images)
                for i, (ids, params, images) in enumerate(requests)
            )
        )

    return asyncio.run(burst())


@pytest.mark.parametrize(
    "params",
    [
        {"temperature": 1.0, "top_p": 1.0, "top_k": -1},
        {"temperature": 0.6, "top_p": 1.0, "top_k": -1},
        {"temperature": 1.3, "top_p": 0.8, "top_k": -1},
        {"temperature": 1.0, "top_p": 0.9, "top_k": 5},
    ],
)
def test_log_probs_match_a_recomputation_at_each_temperature_and_truncation(server, params):
    """The reported log-prob is the full-vocabulary one at the temperature, also when top-p/top-k truncate the draw:
    verl's actor recomputes exactly that (it knows nothing of the truncation)."""
    ids, inputs = prompt_ids(server)
    out = generate(server, ids, params)
    expected = recomputed_log_probs(server.model, inputs, out.token_ids, params["temperature"])
    assert torch.allclose(torch.tensor(out.log_probs), expected, atol=LOG_PROB_TOLERANCE)


def test_concurrent_requests_are_generated_as_one_batch_and_each_equals_its_solo_run(tiny_vlm_dir):
    """Batching is invisible: a request draws the same tokens, with the same log-probs, alone or in a batch with
    other prompts (text and image, different lengths), because each row samples from its own seed."""
    image = Image.fromarray((np.random.default_rng(1).random((40, 50, 3)) * 255).astype("uint8"))
    params = {"temperature": 1.0, "top_p": 0.95, "top_k": -1}

    def fresh():
        return HFRolloutServer(rollout_config(), SimpleNamespace(path=str(tiny_vlm_dir)))

    probe = fresh()
    text_ids, _ = prompt_ids(probe)
    short_ids, _ = prompt_ids(probe, [{"role": "user", "content": "Hi"}])
    image_ids, _ = prompt_ids(probe, IMAGE_PROMPT, images=[image])
    requests = [
        (text_ids, params, None),
        (short_ids, params, None),
        (image_ids, params, [image]),
        (text_ids, params, None),
    ]

    together = fresh()
    batched = generate_together(together, requests)
    assert together.batches_run == 1
    solo = []
    alone = fresh()
    for ids, request_params, images in requests:
        solo.append(generate(alone, ids, request_params, images=images))
    assert alone.batches_run == len(requests)
    for one, many in zip(solo, batched, strict=True):
        assert one.token_ids == many.token_ids
        assert np.allclose(one.log_probs, many.log_probs, atol=LOG_PROB_TOLERANCE)
    # The two requests for the same prompt are two different samples (their occurrence differs).
    assert batched[0].token_ids != batched[3].token_ids


def test_seeded_sampler_draws_from_the_truncated_tempered_distribution():
    """Many draws of the Gumbel-max sampler follow softmax(logits / T) restricted to top-k / top-p (chi-square)."""
    from scipy.stats import chisquare

    from revisual_verl.cpu.hf_rollout import SeededSampler

    logits = torch.tensor([[2.0, 1.5, 0.5, 0.0, -1.0, -3.0]])
    for temperature, top_p, top_k in [(1.0, 1.0, -1), (0.7, 1.0, -1), (1.0, 0.8, -1), (1.5, 1.0, 3)]:
        draws = 20000
        sampler = SeededSampler(temperature, top_p, top_k, list(range(draws)))
        tokens = sampler(None, logits.expand(draws, -1)).argmax(-1)
        expected = torch.softmax(SeededSampler(temperature, top_p, top_k, [0]).filtered(logits)[0], dim=-1)
        support = expected > 0
        observed = torch.bincount(tokens, minlength=logits.shape[1]).float()
        assert observed[~support].sum() == 0, "a token outside top-k/top-p was drawn"
        result = chisquare(observed[support].numpy(), (expected[support] * draws).numpy())
        assert result.pvalue > 1e-3, (temperature, top_p, top_k, observed, expected * draws)
    # The truncations keep what vLLM keeps: top-p keeps the smallest head whose mass reaches p, top-k the k best.
    probs = torch.softmax(logits[0], dim=-1)
    kept = SeededSampler(1.0, 0.8, -1, [0]).filtered(logits)[0] > float("-inf")
    head = int(torch.searchsorted(probs.cumsum(0), torch.tensor(0.8))) + 1
    assert kept.tolist() == [True] * head + [False] * (len(probs) - head)
    assert (SeededSampler(1.0, 1.0, 2, [0]).filtered(logits)[0] > float("-inf")).sum() == 2
