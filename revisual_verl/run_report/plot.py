"""``<run dir>/learning.png``: did the model learn? One picture of the whole run (matplotlib, headless).

Panels: held-out accuracy at each evaluation (one line per set, across stages 2 and 3, the stage-1 model at
step 0), stage 1's SFT loss, the training reward and accuracy per RL step, entropy, PAD's kept fraction and
the response length. RL steps run on across stages: stage 3's step s is drawn at (stage 2's last step) + s.
"""

from __future__ import annotations

from pathlib import Path

from revisual_verl.run_report.metrics import heldout_by_step, read_metrics, series
from revisual_verl.run_report.summary import is_control


def _rl_stages(run_dir: Path) -> list[tuple[str, dict[int, dict], int]]:
    """(label, steps, x offset) of stages 2 and 3, laid end to end."""
    out, offset = [], 0
    for stage in (2, 3):
        steps = read_metrics(run_dir / f"stage{stage}")
        if steps:
            out.append((f"stage {stage}", steps, offset))
            offset += max(steps)
    return out


def plot_learning(run_dir: Path, path: Path | None = None, decoding: dict[str, str] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display on a training node
    import matplotlib.pyplot as plt

    path = path or run_dir / "learning.png"
    stages = _rl_stages(run_dir)
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
    heldout, sft, reward, entropy, kept, length = axes.flat
    presample = any(series(steps, "presample/skipped_share")[0] for _, steps, _ in stages)

    for _, steps, _ in stages:
        for metrics in steps.values():
            if metrics.get("pad/rows"):
                metrics["pad/distinct_fraction"] = metrics.get("pad/distinct_selected_rows", 0) / metrics["pad/rows"]

    lines: dict[str, tuple[list[int], list[float]]] = {}
    for _, steps, offset in stages:
        for step, per_set in heldout_by_step(steps).items():
            for source, value in per_set.items():
                xs, ys = lines.setdefault(source, ([], []))
                if offset and step == 0 and xs and xs[-1] == offset:
                    continue  # stage 3's step-0 validation repeats stage 2's last one
                xs.append(step + offset)
                ys.append(100 * value)
    for source, (xs, ys) in sorted(lines.items()):
        style = ":" if is_control(source) else "-"
        heldout.plot(xs, ys, style, marker="o", label=source + (" (control)" if is_control(source) else ""))
    at = ", ".join(f"{name} {value}" for name, value in (decoding or {}).items())
    heldout.set_title("held-out accuracy (%), mean over k samples" + (f"\n({at})" if at else ""))
    heldout.set_ylim(0, 100)
    if lines:
        heldout.legend(fontsize=8)

    xs, ys = series(read_metrics(run_dir / "stage1"), "train/loss")
    sft.plot(xs, ys, color="tab:gray")
    sft.set_title("stage 1 (SFT): training loss per step")
    sft.set_xlabel("SFT step")
    if ys and min(ys) > 0:
        sft.set_yscale("log")  # the loss falls by orders of magnitude

    for axis, keys, title in (
        (
            reward,
            (("critic/score/mean", "reward"), ("reward/accuracy/mean", "accuracy")),
            "training reward per RL step",
        ),
        (entropy, (("actor/entropy", "entropy"),), "policy entropy"),
        (
            kept,
            (
                ("pad/kept_fraction", "rows trained on / rows generated"),
                ("pad/distinct_fraction", "distinct rows kept"),
                ("presample/skipped_share", "prompts skipped before rollout"),
                ("presample/uniform_share", "uniform groups after rollout"),
            ),
            "PAD: rows trained on (> 1: drawn with replacement)" + ("; presample" if presample else ""),
        ),
        (length, (("response_length/mean", "mean response length"),), "response length (tokens)"),
    ):
        for label, steps, offset in stages:
            for key, name in keys:
                xs, ys = series(steps, key)
                if xs:
                    axis.plot([x + offset for x in xs], ys, label=f"{name}, {label}")
        axis.set_title(title)
        axis.set_xlabel("RL step (stage 3 continues stage 2)")
        if axis is reward:
            axis.set_ylim(0, 1)
        if axis.lines:
            axis.legend(fontsize=8)
    for axis in (heldout, reward, entropy, kept, length):
        for _, _, offset in stages[1:]:
            axis.axvline(offset, color="black", linewidth=0.8, alpha=0.5)
    heldout.set_xlabel("RL step (0: the stage-1 model)")
    fig.suptitle(f"ReVisual-R1 recipe: {run_dir}")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
