"""MkDocs hook: the API reference's top-level section is `mmdigits_keras.__all__` itself, one
mkdocstrings block per public name at the module that defines it, so the page cannot drift
from the package's public API."""

import importlib

MARKER = "<!-- public-api -->"
# Section titles by the defining subpackage, in the order users meet them.
SECTIONS = {"models": "Models", "data": "Data", "training": "Training", "tuning": "Search",
            "submission": "Submission", "evaluation": "Evaluation", "export": "Export", "workflows": "The demo"}


def public_api():
    """{section title: [dotted path of each public name at its defining module]}, in
    `SECTIONS` order, names in `__all__` order."""
    package = importlib.import_module("mmdigits_keras")
    sections = {title: [] for title in SECTIONS.values()}
    for name in package.__all__:
        module = getattr(package, name).__module__
        sections[SECTIONS[module.split(".")[1]]].append(f"{module}.{name}")
    return {title: paths for title, paths in sections.items() if paths}


def on_page_markdown(markdown, page, **kwargs):
    if MARKER not in markdown:
        return markdown
    blocks = []
    for title, paths in public_api().items():
        blocks.append(f"### {title}\n")
        blocks.extend(f"::: {path}\n    options:\n      heading_level: 4\n" for path in paths)
    return markdown.replace(MARKER, "\n".join(blocks))
