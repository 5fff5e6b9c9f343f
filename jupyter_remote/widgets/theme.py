"""The colours of the widgets: JupyterLab's theme variables, never fixed colours.

A fixed colour is right in one theme only (the dark theme made "failed" 2.6:1 and stderr a
bright pink strip). JupyterLab's state colours are not readable as text in both themes
either: ``--jp-error-color1`` is red-700 in the light theme and red-500 in the dark one, both
too pale or too dark against one of the backgrounds. So a state's text colour is the theme's
colour mixed with the theme's strongest font colour (``--jp-ui-font-color0``: black in the
light theme, white in the dark one): the mix darkens in the light theme and lightens in the
dark one, and stays above 4.5:1 against the cell's background in both (checked by the axe-core
pass in tests/ui). Outside JupyterLab (nbviewer, GitHub) the variables are unset and the
text keeps the page's own colour.
"""

from __future__ import annotations


def readable(var: str, share: int = 60) -> str:
    """A CSS colour: theme colour ``var`` mixed toward the theme's font colour."""
    return f"color-mix(in srgb, var({var}) {share}%, var(--jp-ui-font-color0))"


def tint(var: str, share: int = 12) -> str:
    """A CSS background: a faint wash of theme colour ``var`` over whatever is below."""
    return f"color-mix(in srgb, var({var}) {share}%, transparent)"


MUTED = "var(--jp-ui-font-color1)"
BORDER = "var(--jp-border-color2)"

STATE = {
    "queued": MUTED,
    "building": readable("--jp-warn-color1"),
    "running": readable("--jp-brand-color1"),
    "done": readable("--jp-success-color1"),
    "failed": readable("--jp-error-color1"),
    "cancelled": MUTED,
}
REF_STATUS = {
    "pending": readable("--jp-warn-color1"),
    "finished": readable("--jp-success-color1"),
    "error": readable("--jp-error-color1"),
    "cancelled": MUTED,
    "lost": MUTED,
}
LEVEL = {
    "DEBUG": f"color:{MUTED}",
    "INFO": f"color:{readable('--jp-brand-color1')}",
    "WARNING": f"color:{readable('--jp-warn-color1')}",
    "ERROR": f"color:{readable('--jp-error-color1')};font-weight:bold",
    "CRITICAL": (f"color:{readable('--jp-error-color1')};background:{tint('--jp-error-color1')};"
                 "font-weight:bold"),
}
STDERR = f"color:{readable('--jp-error-color1')};background:{tint('--jp-error-color1', 8)}"
