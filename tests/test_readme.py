"""The README's usage example runs and says what it claims."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_usage_example():
    text = README.read_text()
    code = re.search(r"```python\n(.*?)```", text.split("## What it computes", 1)[1], re.S).group(1)
    ns: dict = {}
    exec(compile(code, str(README), "exec"), ns)
    assert ns["grad"].shape == ns["z"].shape and ns["loss"] > 0
    assert ns["per_anchor"].shape == (2, 13, 13, 3)
