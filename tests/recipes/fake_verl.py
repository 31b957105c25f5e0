"""A fake verl on PATH for the recipe tests: shims named ``python``, ``torchrun`` and ``nvidia-smi``.

Each shim appends its argv (and MODEL_PATH) to a JSON-lines log, then does to the disk what the real
program would: a trainer writes ``global_step_N`` checkpoints and verl's tracker file under
``trainer.default_local_dir``, the merger writes a Hugging Face directory that names its source.

Knobs (environment): FAKE_GPUS (how many GPUs nvidia-smi lists), FAKE_FAIL_STAGE (that stage's
trainer saves one checkpoint, then exits 1), FAKE_FAIL_MERGE (that stage's merge leaves a half
directory and exits 1), FAKE_UNLOADABLE_MERGE (that stage's merge succeeds but the merged directory
does not load: ``revisual_verl.recipes.merged_model`` exits 1 on it, as for a missing processor).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

SHIM = r"""#!{python}
import json, os, re, sys
from pathlib import Path

prog = os.path.basename(sys.argv[0])
argv = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({{"prog": prog, "argv": argv, "model_path": os.environ.get("MODEL_PATH"),
                          "engine_vendor": os.environ.get("VERL_ENGINE_VENDOR"),
                          "session_leader": os.getsid(0) == os.getpid()}}) + "\n")

if prog == "nvidia-smi":
    for i in range(int(os.environ.get("FAKE_GPUS", "8"))):
        print(f"GPU {{i}}: NVIDIA H100 80GB HBM3 (UUID: GPU-fake-{{i}})")
    sys.exit(0)

def value(key):
    for arg in argv:
        if arg.startswith(key + "="):
            return arg.split("=", 1)[1].strip("'")
    return None

module = argv[argv.index("-m") + 1] if "-m" in argv else None
if module == "revisual_verl.recipes.reap":
    # The real launcher: a new session, then the stage's command (a shim again, logged as its own call).
    if "--new-session" in argv:
        os.setsid()
        command = argv[argv.index("--") + 1 :]
        os.execvp(command[0], command)
    sys.exit(0)
if module == "verl.model_merger":
    local_dir = Path(argv[argv.index("--local_dir") + 1])
    target = Path(argv[argv.index("--target_dir") + 1])
    assert (local_dir / "weights.fake").is_file(), f"merger got {{local_dir}}, not a checkpoint"
    target.mkdir(parents=True, exist_ok=True)
    stage = re.search(r"stage(\d)", str(target)).group(1)
    if os.environ.get("FAKE_FAIL_MERGE") == stage:
        (target / "model-00001-of-00004.safetensors").write_text("half")
        sys.exit(1)
    (target / "config.json").write_text(json.dumps({{"merged_from": str(local_dir)}}))
    sys.exit(0)

if module == "revisual_verl.recipes.merged_model":
    target = Path(argv[-1])
    stage = re.search(r"stage(\d)", str(target)).group(1)
    if not (target / "config.json").is_file() or os.environ.get("FAKE_UNLOADABLE_MERGE") == stage:
        print(f"[revisual] ERROR: {{target}}: processor does not load (fake)", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)

if module in ("revisual_verl.sft_trainer", "revisual_verl.sft_trainer_ray", "revisual_verl.main_ppo"):
    ckpts = Path(value("trainer.default_local_dir"))
    stage = re.search(r"stage(\d)", str(ckpts)).group(1)
    steps = [1] if os.environ.get("FAKE_FAIL_STAGE") == stage else [1, 2, 3]
    for step in steps:
        step_dir = ckpts / f"global_step_{{step}}"
        if module == "revisual_verl.main_ppo":
            step_dir = step_dir / "actor"
        step_dir.mkdir(parents=True, exist_ok=True)
        (step_dir / "weights.fake").write_text(str(step))
        (ckpts / "latest_checkpointed_iteration.txt").write_text(str(step))
    sys.exit(1 if len(steps) == 1 else 0)

sys.exit(0)
"""


def install(bin_dir: Path) -> None:
    """Write the shims into ``bin_dir`` (to be put first on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    source = SHIM.format(python=sys.executable)
    for name in ("python", "torchrun", "nvidia-smi"):
        path = bin_dir / name
        path.write_text(source)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def read_log(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def module_of(call: dict) -> str | None:
    argv = call["argv"]
    return argv[argv.index("-m") + 1] if "-m" in argv else None


def override(call: dict, key: str) -> str | None:
    for arg in call["argv"]:
        if arg.startswith(key + "="):
            return arg.split("=", 1)[1].strip("'")
    return None


def env_for(tmp: Path, bin_dir: Path, log: Path, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        FAKE_LOG=str(log),
        **extra,
    )
    # The recipes read these; a developer's shell must not leak its own into the test.
    for key in (
        "DRY_RUN",
        "MODEL_PATH",
        "STAGES",
        "RESUME",
        "STAGE_DIR",
        "NNODES",
        "NODE_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
        "GPUS_PER_NODE",
        "SKIP_GPU_CHECK",
        "VERL_ENGINE_VENDOR",
    ):
        if key not in extra:
            env.pop(key, None)
    return env
