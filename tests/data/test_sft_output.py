"""The cold-start output read by verl's MultiTurnSFTDataset, as ``verl.trainer.sft_trainer`` reads it."""

import pyarrow.parquet as pq
import torch
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset


def test_multiturn_sft_dataset_trains_exactly_on_the_assistant_turns(prepared_samples, tiny_tokenizer):
    files = [str(prepared_samples["coldstart"] / "train.parquet"), str(prepared_samples["coldstart"] / "val.parquet")]
    dataset = MultiTurnSFTDataset(files, tiny_tokenizer, {"max_length": 1024, "truncation": "error"})
    conversations = [row for f in files for row in pq.read_table(f).column("messages").to_pylist()]
    assert len(dataset) == len(conversations) == 12

    for item, messages in zip((dataset[i] for i in range(len(dataset))), conversations, strict=True):
        assert item["input_ids"].shape == item["loss_mask"].shape == (1024,)
        real = item["attention_mask"].bool()
        whole = tiny_tokenizer.apply_chat_template(messages, tokenize=False)
        assert tiny_tokenizer.decode(item["input_ids"][real]) == whole
        trained = tiny_tokenizer.decode(item["input_ids"][item["loss_mask"].bool()])
        expected = "".join(m["content"] + "<|im_end|>\n" for m in messages if m["role"] == "assistant")
        assert trained == expected
        assert "</think>" in trained and "\\boxed{" in trained
        assert torch.equal(item["position_ids"][real], torch.arange(int(real.sum())))
