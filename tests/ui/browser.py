"""Helpers for the browser tests: artifacts (screenshots), JupyterLab's theme, and axe-core.

axe-core comes from the labextension's own npm devDependencies (``labextension/node_modules``,
installed by the same ``npm install`` that builds the extension), so the tests install
nothing when they run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "labextension" / "node_modules" / "axe-core" / "axe.min.js"


def artifacts_dir(name: str) -> Path:
    """Where a test leaves its screenshots: ``$JUPYTER_REMOTE_UI_ARTIFACTS`` if set, else
    ``tests/ui/artifacts/`` (git-ignored), one folder per test."""
    root = Path(
        os.environ.get("JUPYTER_REMOTE_UI_ARTIFACTS") or REPO / "tests" / "ui" / "artifacts"
    )
    where = root / re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    where.mkdir(parents=True, exist_ok=True)
    return where


def set_theme(page, dark: bool) -> None:
    """Switch JupyterLab's theme from its Settings menu, with real clicks."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).click()
    name = "JupyterLab Dark" if dark else "JupyterLab Light"
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{name}$")).click()
    page.locator(f'body[data-jp-theme-light="{"false" if dark else "true"}"]').wait_for(
        state="attached"
    )
    page.locator(f'body[data-jp-theme-name="{name}"]').wait_for(state="attached")
    # The theme's CSS is swapped in a <link>; wait until its variables apply.
    page.wait_for_function(
        """dark => {
            const bg = getComputedStyle(document.body).getPropertyValue('--jp-layout-color1');
            const c = document.createElement('div');
            c.style.color = bg; document.body.appendChild(c);
            const [r, g, b] = getComputedStyle(c).color.match(/\\d+/g).map(Number);
            c.remove();
            return dark ? r + g + b < 200 : r + g + b > 500;
        }""",
        arg=dark,
    )
    # ... and until the colours' transitions have ended (pictures and contrast checks).
    page.wait_for_function(
        "() => document.getAnimations().every(a => a.playState !== 'running')"
    )


def axe_violations(page, selector: str, rules: tuple[str, ...] = ()) -> list[dict]:
    """Run axe-core over ``selector`` and return its violations (``rules``: only those).

    A node axe could not decide (an "incomplete" result, e.g. a colour it could not compute)
    counts as a violation: an undecided check is not a pass."""
    assert AXE.exists(), (
        f"{AXE} is missing: run `npm install` in labextension/ (axe-core is a devDependency)"
    )
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    options = {"runOnly": {"type": "rule", "values": list(rules)}} if rules else {}
    # JupyterLab's <body> is 0 px high with overflow hidden (the shell is positioned over
    # it), so axe takes every element as clipped by it, and reports colour contrast as
    # "inapplicable" everywhere. Giving <body> the viewport's height (the shell, absolutely
    # positioned, does not move) lets axe see what is on screen; it is undone after the run.
    result = page.evaluate(
        """async ([selector, options]) => {
            const body = document.body.style.height;
            document.body.style.height = '100vh';
            try {
                return await axe.run(selector, options);
            } finally {
                document.body.style.height = body;
            }
        }""",
        [selector, options],
    )
    return result["violations"] + result["incomplete"]


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']}: {v['help']}")
        for node in v["nodes"][:5]:
            lines.append(
                f"    {node['target']}: {node.get('failureSummary', '')}".replace("\n", " ")
            )
    return "\n".join(lines)
