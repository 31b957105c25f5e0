import subprocess
import sys


def test_the_pure_reward_api_imports_neither_verl_nor_sympy():
    code = (
        "import sys; import revisual_verl.reward as r; "
        "r.efficient_length_reward(1, 2); r.extract_answer('\\\\boxed{1}'); r.format_reward(''); "
        "print(sorted(m for m in ('verl', 'sympy', 'math_verify', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_the_plugin_registers_the_manager_in_verl():
    import verl  # noqa: F401  loads the plugin through its entry point
    from verl.experimental.reward_loop.reward_manager.registry import get_reward_manager_cls

    assert get_reward_manager_cls("revisual").__module__ == "revisual_verl.reward.manager"
