"""README's copy-paste blocks are the ones the tests and CI run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _blocks(text: str, heading: str, lang: str) -> list[str]:
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


def test_analysis_section_is_the_tested_snippet():
    readme = (ROOT / "README.md").read_text()
    (block,) = _blocks(readme, "Use in your analysis", "python")
    snippet = (ROOT / "examples" / "analysis_snippet.py").read_text()
    body = "\n".join(line for line in snippet.splitlines()[2:]).strip()
    assert block.strip() == body


def test_training_section_is_the_tested_example():
    readme = (ROOT / "README.md").read_text()
    (block,) = _blocks(readme, "Train from Python", "python")
    example = (ROOT / "examples" / "train_from_python.py").read_text()
    assert block.strip() == "\n".join(example.splitlines()[2:]).strip()


def test_ci_runs_readme_test_command_exactly():
    readme = (ROOT / "README.md").read_text()
    main_job, tests = _blocks(readme, "Two commands on a fresh machine", "bash")
    assert "snakemake --cores all" in main_job
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests.strip() in ci
