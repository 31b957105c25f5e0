"""What pad_sync stores makes verl's real actor engine train exactly on PAD's selected rows.

The masks and advantages come from the trainers themselves: PadSyncTrainer and verl's plain v1 'sync'
trainer compute advantages on rows in TransferQueue (Ray on CPU), as in a run. Then one optimizer step of
verl's FSDP2 engine (engine_exactness_run.py, a subprocess on the CPU+gloo platform of tests/engine) on:
  (a) the full batch with what pad_sync stored;
  (b) only the selected rows, each repeated as often as it was drawn, with their rollout masks and one
      draw's advantage;
  (c) the full batch with what verl's plain 'sync' trainer stores: the same zeroed advantages, masks as
      rolled out.
  (d) the distilled batch that pad_sync's default mode (algorithm.pad.compact=true) builds and trains on,
      exactly as its update pass received it: the selected rows, a row drawn m times present once with
      weight m (algorithm.pad.duplicates=weights, the default), verl's padding rows (127-token prompts,
      all-zero masks) up to verl's mini-batch multiple;
  (e) with replacement, the same with duplicates=copies (the authors' trainer): a row drawn m times present
      m times.
(a), (b), (d) and (e) give the same parameters although their micro-batches hold different rows; (c) does not,
because its token-mean denominator (the sum of loss_mask) also counts the dropped rows. The log-probs the
engine computes for (d)'s rows (the distilled old log-prob pass) equal those computed on the full batch.

The step is plain SGD without clipping, so parameters move by -lr * gradient. AdamW's first step is
lr * g / (|g| + eps), blind to the loss scale, and clipping would rescale both gradients alike: either
would hide the denominator that (c) gets wrong.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.plugin_config import compose_plugin_config
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage
from verl.trainer.ppo.v1.trainer_base import get_trainer_cls
from verl.utils import tensordict_utils as tu

from revisual_verl.pad.estimator import pop_latest_result, set_progress
from revisual_verl.pad.trainer import PadSyncTrainer

HERE = Path(__file__).parent
REPO = HERE.parent.parent
GROUPS, N, PROMPT_LEN = 4, 4, 6
# Group 0 is uniform (no signal), the others mixed.
SCORES = [[1, 1, 1, 1], [1, 0, 0, 1], [0, 1, 0, 0], [1, 0, 1, 1]]
BASE = [
    f"data.train_batch_size={GROUPS}",
    f"actor_rollout_ref.rollout.n={N}",
    f"actor_rollout_ref.actor.ppo_mini_batch_size={GROUPS}",  # one mini-batch: the whole step is one update
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
    "transfer_queue.enable=true",
    "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
]
CASES = {
    "no_replacement": ["algorithm.pad.rho=0.5"],
    "replacement": ["algorithm.pad.rho=1.5", "algorithm.pad.replacement=true"],
}
# The distilled runs of each draw, sized so that the whole batch is one optimizer update as in (a)-(c):
# 8 rows + 8 of verl's padding rows = one mini-batch of 16; with replacement, 24 rows as copies + 8 padding
# or the distinct rows as weights + padding = one of 32.
COMPACT = ["algorithm.pad.compact=true", "actor_rollout_ref.rollout.calculate_log_probs=false"]
ONE_UPDATE_OF_32 = ["actor_rollout_ref.actor.ppo_mini_batch_size=8"]
DISTILLED = {
    "no_replacement": {"d_distilled": COMPACT},
    "replacement": {
        "d_distilled": COMPACT + ONE_UPDATE_OF_32,
        "e_copies": COMPACT + ONE_UPDATE_OF_32 + ["algorithm.pad.duplicates=copies"],
    },
}
DISTILLED_CASES = [(draw, case) for draw, cases in DISTILLED.items() for case in cases]


def compose_config(extra=()):
    return compose_plugin_config(overrides=BASE + list(extra))


def make_rollout():
    """Text-only GRPO groups: one prompt per group, responses of 2-7 tokens, the score on the last token."""
    gen = torch.Generator().manual_seed(0)
    prompts, responses, scores = [], [], []
    for group_scores in SCORES:
        prompt = torch.randint(3, 100, (PROMPT_LEN,), generator=gen)
        for score in group_scores:
            prompts.append(prompt)
            responses.append(torch.randint(3, 100, (int(torch.randint(2, 8, (1,), generator=gen)),), generator=gen))
            scores.append(float(score))
    return prompts, responses, scores


def put_rollout(tq, step_name, responses, scores, prompts=None):
    """The rollout as verl's agent loop stores it: keys uid_session_index, loss_mask a copy of response_mask."""
    keys = [f"{step_name}g{i // N}_{i % N}_0" for i in range(len(responses))]
    masks = [torch.ones(len(r), dtype=torch.int64) for r in responses]
    rm_scores = [
        torch.cat([torch.zeros(len(r) - 1), torch.tensor([s])]) for r, s in zip(responses, scores, strict=True)
    ]

    def nested(tensors):
        return torch.nested.as_nested_tensor(tensors, layout=torch.jagged)

    fields = {
        "response_mask": nested(masks),
        "loss_mask": nested([m.clone() for m in masks]),
        "rm_scores": nested(rm_scores),
        "uid": [f"{step_name}g{i // N}" for i in range(len(responses))],
    }
    if prompts is not None:
        fields.update(prompts=nested(prompts), responses=nested(responses))
    tags = [{"is_padding": False, "seq_len": PROMPT_LEN + len(r)} for r in responses]
    return tq.kv_batch_put(keys=keys, partition_id="train", fields=tu.get_tensordict(fields), tags=tags)


def stored_rows(tq, batch):
    stored = tq.kv_batch_get(
        keys=batch.keys, partition_id="train", select_fields=["advantages", "response_mask", "loss_mask"]
    )
    return {name: list(stored[name].unbind()) for name in ("advantages", "response_mask", "loss_mask")}


def trainer_fields(tq, extra, tag):
    """What pad_sync stores for the rollout, and what verl's plain 'sync' trainer stores on the same draw."""
    _, responses, scores = make_rollout()
    pad_trainer = PadSyncTrainer(compose_config(extra))
    pad_trainer.global_steps, pad_trainer.total_training_steps = 3, 10
    metrics = {}
    pad_batch = pad_trainer._compute_advantage(put_rollout(tq, f"{tag}pad", responses, scores), metrics)
    pad = stored_rows(tq, pad_batch)

    sync_trainer = get_trainer_cls("sync")(compose_config(extra))
    assert type(sync_trainer) is not PadSyncTrainer
    # The step pad_sync announced, so the estimator draws the same rows (the sync trainer tells it nothing).
    set_progress(2, 9, draw=pad_trainer.local_trigger_step)
    sync_batch = sync_trainer._compute_advantage(put_rollout(tq, f"{tag}sync", responses, scores), {})
    # The estimator's own multiplicities, independent of what pad_sync wrote to the masks.
    weights = pop_latest_result().weights.long().tolist()
    sync = stored_rows(tq, sync_batch)
    return pad, sync, weights, metrics


def distilled_fields(tq, wire, extra, tag, extra_rows):
    """The batch pad_sync's distilled step trains on, as its update pass received it.

    Returns the case (row ids into the rollout, verl's padding rows appended to ``extra_rows`` with ids after
    the rollout's) and the step's metrics."""
    prompts, responses, scores = make_rollout()
    trainer = PadSyncTrainer(compose_config(extra))
    assert trainer.pad_compact
    trainer.global_steps, trainer.total_training_steps = 3, 10
    batch = put_rollout(tq, f"{tag}distilled", responses, scores, prompts=prompts)
    workers = wire(trainer, tq, batch)
    metrics = {}
    trainer._step_once(metrics, {}, sample_batch_size=GROUPS)
    update = workers.update
    stored = update["stored"]
    rows = []
    for i, (key, row_tag) in enumerate(zip(update["keys"], update["tags"], strict=True)):
        source = row_tag.get("pad_copy_of", key)
        if source in batch.keys:
            rows.append(batch.keys.index(source))
        else:
            extra_rows.append({"prompt": stored["prompts"][i].clone(), "response": stored["responses"][i].clone()})
            rows.append(len(responses) + len(extra_rows) - 1)
    case = {"rows": rows, "infer": True}
    for name in ("advantages", "response_mask", "loss_mask"):
        case[name] = [t.clone() for t in stored[name].unbind()]
    return case, metrics


def run_engine_steps(payload: dict, tmp_path: Path) -> dict:
    torch.save(payload, tmp_path / "payload.pt")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REVISUAL_")},
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "tests" / "engine"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
        ),
        "VERL_PLATFORM": "cpu",  # the CPU mode's platform, registered by the plugin
        "VERL_ENGINE_VENDOR": "revisual",  # verl's own engine cannot run text-only Qwen2.5-VL batches
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, str(HERE / "engine_exactness_run.py")]
    command += ["--payload", str(tmp_path / "payload.pt"), "--out", str(tmp_path / "out.pt")]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"engine run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return torch.load(tmp_path / "out.pt", weights_only=True)


@pytest.fixture(scope="module")
def engine_results(transfer_queue, wire_pad_trainer, tmp_path_factory):
    """Every case of both draws in one engine subprocess (its start-up dominates)."""
    prompts, responses, scores = make_rollout()
    rows = list(range(len(responses)))
    payload = {"prompts": prompts, "responses": responses, "cases": {}, "extra_rows": []}
    draws = {}
    for name, extra in CASES.items():
        pad, sync, weights, metrics = trainer_fields(transfer_queue, extra, name)
        duplicated = [i for i in rows for _ in range(weights[i])]
        draws[name] = {"weights": weights, "pad": pad, "sync": sync, "metrics": metrics}
        payload["cases"][f"{name}/a_pad_sync"] = {"rows": rows, **pad}
        payload["cases"][f"{name}/b_selected_rows"] = {
            "rows": duplicated,
            # One draw's advantage: pad_sync stores it times the row's multiplicity.
            "advantages": [pad["advantages"][i] / weights[i] for i in duplicated],
            "response_mask": [torch.ones(len(responses[i]), dtype=torch.int64) for i in duplicated],
            "loss_mask": [torch.ones(len(responses[i]), dtype=torch.int64) for i in duplicated],
        }
        payload["cases"][f"{name}/c_plain_sync"] = {"rows": rows, **sync}
        for case, case_extra in DISTILLED[name].items():
            distilled, distilled_metrics = distilled_fields(
                transfer_queue, wire_pad_trainer, extra + case_extra, f"{name}{case[0]}", payload["extra_rows"]
            )
            payload["cases"][f"{name}/{case}"] = distilled
            draws[name][f"{case}_metrics"] = distilled_metrics
    out = run_engine_steps(payload, tmp_path_factory.mktemp("engine_exactness"))
    payload_rows = {name: case["rows"] for name, case in payload["cases"].items()}
    # The largest loss_mask entry of each row: its weight in the token-mean denominator.
    row_weights = {
        name: [int(m.max()) if m.numel() else 0 for m in case["loss_mask"]] for name, case in payload["cases"].items()
    }
    return {
        "draws": draws,
        "scores": scores,
        "responses": responses,
        "payload_rows": payload_rows,
        "row_weights": row_weights,
        **out,
    }


def deltas(result: dict, case: str) -> dict:
    return {n: p - result["before"][n] for n, p in result["cases"][case]["params"].items()}


@pytest.mark.parametrize("draw", list(CASES))
def test_pad_sync_stores_a_real_selection(engine_results, draw):
    responses, scores = engine_results["responses"], engine_results["scores"]
    info = engine_results["draws"][draw]
    weights, pad, sync = info["weights"], info["pad"], info["sync"]
    lengths = [len(r) for r in responses]
    assert weights[:N] == [0] * N  # the uniform group has no advantage and is never drawn
    assert 0 < sum(w > 0 for w in weights) < len(weights)
    if draw == "replacement":
        assert max(weights) > 1 and sum(weights) == 24  # ceil(rho * N) draws, N = every valid row
    else:
        assert max(weights) == 1
    assert info["metrics"]["pad/selected_rows"] == sum(weights)
    # One draw's advantage is the GRPO advantage (verl's estimator, on the same rollout).
    rewards = torch.zeros(len(responses), max(lengths))
    rewards[torch.arange(len(responses)), torch.tensor(lengths) - 1] = torch.tensor(scores)
    mask = (torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]).float()
    grpo, _ = compute_grpo_outcome_advantage(rewards, mask, [f"g{i // N}" for i in range(len(responses))])
    for i, w in enumerate(weights):
        assert torch.equal(pad["response_mask"][i], torch.full((lengths[i],), int(w > 0)))
        assert torch.equal(pad["loss_mask"][i], torch.full((lengths[i],), w))
        torch.testing.assert_close(pad["advantages"][i], grpo[i, : lengths[i]] * w, rtol=1e-5, atol=1e-6)
        # verl's plain trainer stores the same advantages but leaves both masks as rolled out.
        assert torch.equal(sync["advantages"][i], pad["advantages"][i])
        assert torch.equal(sync["response_mask"][i], torch.ones(lengths[i], dtype=torch.int64))
        assert torch.equal(sync["loss_mask"][i], torch.ones(lengths[i], dtype=torch.int64))


@pytest.mark.parametrize("draw", list(CASES))
def test_one_engine_step_on_pad_sync_fields_equals_one_on_the_selected_rows(engine_results, draw):
    assert engine_results["engine_cls"] == "RevisualFSDPEngine"
    cases = engine_results["cases"]
    full, sliced = cases[f"{draw}/a_pad_sync"], cases[f"{draw}/b_selected_rows"]
    weights = engine_results["draws"][draw]["weights"]
    lengths = [len(r) for r in engine_results["responses"]]
    assert full["batch_num_tokens"] == sliced["batch_num_tokens"] == sum(w * n for w, n in zip(weights, lengths))
    # Gradient accumulation over different micro-batch splits of different rows.
    assert full["micro_batches"] == 8 and sliced["micro_batches"] == -(-sum(weights) // 2)
    assert full["grad_norm"] > 0
    assert full["grad_norm"] == pytest.approx(sliced["grad_norm"], rel=1e-5)
    assert full["loss"] == pytest.approx(sliced["loss"], rel=1e-5, abs=1e-7)

    step_full, step_sliced = (
        deltas(engine_results, f"{draw}/a_pad_sync"),
        deltas(engine_results, f"{draw}/b_selected_rows"),
    )
    # Every language-model tensor moved (27 in the tiny model; the vision tower has no gradient on text rows).
    assert sum(1 for d in step_full.values() if d.abs().max() > 0) == 27
    scale = max(float(d.abs().max()) for d in step_full.values())
    for name, param in full["params"].items():
        # Float32 round-off of differently ordered sums only: about 1e-7 here, against steps of about 0.2-0.4.
        assert torch.allclose(param, sliced["params"][name], rtol=1e-6, atol=1e-6), name
        torch.testing.assert_close(step_full[name], step_sliced[name], rtol=1e-4, atol=2e-6 * scale, msg=name)


@pytest.mark.parametrize("draw", list(CASES))
def test_without_the_mask_write_back_the_dropped_rows_dilute_the_step(engine_results, draw):
    cases = engine_results["cases"]
    exact, diluted = cases[f"{draw}/a_pad_sync"], cases[f"{draw}/c_plain_sync"]
    lengths = [len(r) for r in engine_results["responses"]]
    assert diluted["batch_num_tokens"] == sum(lengths) != exact["batch_num_tokens"]
    ratio = exact["batch_num_tokens"] / diluted["batch_num_tokens"]
    assert diluted["grad_norm"] == pytest.approx(exact["grad_norm"] * ratio, rel=1e-5)

    step_exact, step_diluted = (
        deltas(engine_results, f"{draw}/a_pad_sync"),
        deltas(engine_results, f"{draw}/c_plain_sync"),
    )
    assert not all(torch.allclose(p, diluted["params"][n], rtol=1e-6, atol=1e-6) for n, p in exact["params"].items())
    # The same direction, scaled by (selected tokens) / (all tokens).
    scale = max(float(d.abs().max()) for d in step_exact.values())
    for name, step in step_exact.items():
        torch.testing.assert_close(step_diluted[name], step * ratio, rtol=1e-4, atol=1e-5 * scale, msg=name)


def distilled_row_count(weights: list[int], case: str) -> int:
    """Rows of the rollout in the distilled batch: each drawn row once (weights) or as often as drawn (copies)."""
    return sum(weights) if case == "e_copies" else sum(w > 0 for w in weights)


@pytest.mark.parametrize("draw, case", DISTILLED_CASES)
def test_one_engine_step_on_the_distilled_batch_equals_one_on_the_selected_rows(engine_results, draw, case):
    cases = engine_results["cases"]
    distilled, sliced, masked = (cases[f"{draw}/{c}"] for c in (case, "b_selected_rows", "a_pad_sync"))
    weights = engine_results["draws"][draw]["weights"]
    metrics = engine_results["draws"][draw][f"{case}_metrics"]
    num_rows = len(engine_results["responses"])
    lengths = [len(r) for r in engine_results["responses"]]
    # The same draw as the masked mode; then verl's padding rows up to one mini-batch (16 or 32 rows).
    rows = distilled_row_count(weights, case)
    mini_batch = 16 if draw == "no_replacement" else 32
    assert metrics["pad/selected_rows"] == sum(weights) and metrics["pad/padding_rows"] == mini_batch - rows
    assert metrics["pad/model_rows"] == mini_batch
    assert distilled["micro_batches"] == mini_batch // 2
    if draw == "replacement" and case == "d_distilled":
        # Weights: fewer rows through the model than draws, the multiplicity in loss_mask and the advantage.
        assert rows < sum(weights)
        kept = [w for w in weights if w > 0]
        assert sorted(w for w in engine_results["row_weights"][f"{draw}/{case}"] if w > 0) == sorted(kept)
    assert distilled["batch_num_tokens"] == sliced["batch_num_tokens"] == sum(w * n for w, n in zip(weights, lengths))
    assert distilled["grad_norm"] > 0
    assert distilled["grad_norm"] == pytest.approx(sliced["grad_norm"], rel=1e-5)
    assert distilled["loss"] == pytest.approx(sliced["loss"], rel=1e-5, abs=1e-7)
    step_distilled = deltas(engine_results, f"{draw}/{case}")
    step_sliced = deltas(engine_results, f"{draw}/b_selected_rows")
    scale = max(float(d.abs().max()) for d in step_sliced.values())
    for name, param in distilled["params"].items():
        assert torch.allclose(param, sliced["params"][name], rtol=1e-6, atol=1e-6), name
        assert torch.allclose(param, masked["params"][name], rtol=1e-6, atol=1e-6), name
        torch.testing.assert_close(step_distilled[name], step_sliced[name], rtol=1e-4, atol=2e-6 * scale, msg=name)
    assert sum(1 for i in range(num_rows) if weights[i]) < num_rows


@pytest.mark.parametrize("draw, case", DISTILLED_CASES)
def test_old_log_probs_of_the_distilled_rows_equal_those_on_the_full_batch(engine_results, draw, case):
    rows = engine_results["payload_rows"][f"{draw}/{case}"]
    on_distilled = engine_results["case_log_probs"][f"{draw}/{case}"]
    full = engine_results["full_log_probs"]
    num_rows = len(engine_results["responses"])
    kept = [(i, row) for i, row in enumerate(rows) if row < num_rows]
    assert len(kept) == distilled_row_count(engine_results["draws"][draw]["weights"], case)
    for i, row in kept:
        torch.testing.assert_close(on_distilled[i], full[row], rtol=1e-5, atol=1e-6)


def grpo_row_advantages(scores) -> list[float]:
    """verl's GRPO advantage of each response (one scalar per row: outcome rewards)."""
    rewards = torch.tensor(scores).unsqueeze(1)
    advantages, _ = compute_grpo_outcome_advantage(
        rewards, torch.ones_like(rewards), [f"g{i // N}" for i in range(len(scores))]
    )
    return advantages[:, 0].tolist()


@pytest.mark.parametrize("draw, case", [(draw, "a_pad_sync") for draw in CASES] + DISTILLED_CASES)
def test_one_step_moves_each_trained_response_the_way_its_advantage_points(engine_results, draw, case):
    """The direction of learning, end to end: PAD's rows as pad_sync stores them (masked, or distilled), one
    update of the revisual engine with verl's loss. Responses with a positive advantage become more likely,
    negative ones less; a sign error anywhere between the estimator and the optimizer turns this red."""
    weights = engine_results["draws"][draw]["weights"]
    advantages = grpo_row_advantages(engine_results["scores"])
    before = engine_results["full_log_probs"]
    after = engine_results["cases"][f"{draw}/{case}"]["after_log_probs"]
    change = [float(after[i].sum() - before[i].sum()) for i in range(len(before))]
    trained = [i for i, w in enumerate(weights) if w > 0]
    assert any(advantages[i] > 0 for i in trained) and any(advantages[i] < 0 for i in trained)
    assert sum(weights[i] * advantages[i] * change[i] for i in trained) > 0
    for i in trained:
        if abs(advantages[i]) >= 0.8:
            assert change[i] * advantages[i] > 0, (i, advantages[i], change[i])
