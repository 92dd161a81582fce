"""Slide decks and rendered notebooks that open offline.

    python -m gencourse.export slides notebooks/ build/slides --execute        # a reveal.js deck per notebook
    python -m gencourse.export slides notebooks/ build/slides                  # the text only, no outputs
    python -m gencourse.export html notebooks/ build/html --profile smoke      # run them all: pages + index

SRC is a folder of notebooks or one notebook. DEST receives one page per notebook, an ``index.html``
and a ``_static/`` folder (reveal.js and KaTeX, about 0.9 MB, copied from ``gencourse/static``) that
every page loads by a relative link. Nothing is fetched from a CDN: copy DEST as a whole and open the
pages from disk. Every page written is checked for online scripts or style sheets
(:func:`external_resources`); finding one is an error, not a deck that silently needs the network.

Slides follow each cell's ``metadata.slideshow.slide_type`` (``slide``, ``subslide``, ``fragment``,
``skip``, ``notes``, ``-``), as set in JupyterLab's property inspector. A deck shows the outputs of code
cells (figures, tables, printed checks) but not their code, so a figure or an equation fills the slide:
a code cell whose code belongs on a slide carries the tag ``slide-code`` (``--code`` shows every cell's
code). Long outputs and code scroll inside their slide. ``--execute`` runs each notebook first, in the
given profile (by default the active one, ``lecture`` unless set: quick once its models are pretrained),
so the deck has outputs to show. ``html`` runs each notebook in a fresh kernel the same way and lists
the measured run time of each in the index. These runs are headless: progress bars are off and
``gencourse.plot.explore`` draws its row of panels instead of sliders (``GENCOURSE_WIDGETS=0``).
"""

from __future__ import annotations

import argparse
import copy
import html
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import nbformat

from gencourse.config import PROFILES
from gencourse.plot import offline_player
from gencourse.student import notebook_paths

STATIC = Path(__file__).resolve().parent / "static"
TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC_NAME = "_static"  # the folder beside the pages that holds reveal.js and KaTeX
SLIDE_CODE = "slide-code"  # the cell tag that puts a code cell's code on its slide

ONLINE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])((?:https?:)?//[^"')\s]+)""", re.IGNORECASE)
JS_URL = re.compile(r"""["'`](https?://[^"'`\s]+)""", re.IGNORECASE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in kernel tracebacks


class _ResourceFinder(HTMLParser):
    """Collects the online resources a page loads: src/href of any tag but a plain link (<a>),
    url() and @import in styles, URL strings in inline scripts (dynamic loaders, ES imports)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._inside: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._inside = tag
        for key, value in attrs:
            if not value:
                continue
            if tag != "a" and key in ("src", "href", "data", "poster", "srcset") and ONLINE.match(value):
                self.found.append(f"<{tag} {key}={value!r}>")
            elif key == "style":
                self.found += [f"<{tag} style=url({url})>" for url in CSS_URL.findall(value)]

    def handle_endtag(self, tag):
        if tag == self._inside:
            self._inside = None

    def handle_data(self, data):
        if self._inside == "style":
            self.found += [f"<style> {url}" for url in CSS_URL.findall(data)]
        elif self._inside == "script":
            self.found += [f"<script> {url}" for url in JS_URL.findall(data)]


def external_resources(page: str) -> list[str]:
    """The scripts, style sheets, fonts and images that ``page`` (HTML) would fetch from the network.
    Plain links (``<a href="https://...">``, e.g. to a paper) are not resources and are not listed."""
    finder = _ResourceFinder()
    finder.feed(page)
    finder.close()
    return finder.found


def offline_outputs(nb):
    """A copy of ``nb`` whose HTML outputs no longer load Font Awesome (see ``gencourse.plot.offline_player``)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            page = output.get("data", {}).get("text/html")
            if isinstance(page, list):
                page = "".join(page)
            if page:
                output["data"]["text/html"] = offline_player(page)
    return nb


def _slide_type(cell) -> str:
    return cell.metadata.get("slideshow", {}).get("slide_type", "-") or "-"


def slide_cells(nb, code: bool = False):
    """A copy of ``nb`` as its deck shows it: a code cell's code only when the cell is tagged ``slide-code``
    (or ``code=True``), its outputs always. A cell left with nothing to show is skipped; if it started a
    slide or subslide, the next cell that shows something starts it instead, so no slide or fragment
    step is blank."""
    nb = copy.deepcopy(nb)
    pending = None  # "slide" or "subslide" of hidden cells, handed on to the next visible cell
    for cell in nb.cells:
        kind = _slide_type(cell)
        if kind in ("skip", "notes"):
            continue
        if cell.cell_type == "code" and not (code or SLIDE_CODE in cell.metadata.get("tags", [])):
            cell.metadata["transient"] = {"remove_source": True}
        hidden = cell.metadata.get("transient", {}).get("remove_source", False)
        if (hidden or not cell.source.strip()) and not cell.get("outputs"):
            if kind in ("slide", "subslide"):
                pending = "slide" if "slide" in (pending, kind) else kind
            cell.metadata.setdefault("slideshow", {})["slide_type"] = "skip"
            continue
        if pending and (kind in ("-", "fragment") or (kind == "subslide" and pending == "slide")):
            cell.metadata.setdefault("slideshow", {})["slide_type"] = pending
        pending = None
    return nb


def copy_static(dest: Path) -> Path:
    """Copy reveal.js and KaTeX into ``dest/_static`` (what every exported page links to)."""
    target = Path(dest) / STATIC_NAME
    shutil.copytree(STATIC, target, dirs_exist_ok=True)
    return target


def render(nb, kind: str, name: str, code: bool = False) -> str:
    """``nb`` as a self-contained page: ``kind="slides"`` (a reveal.js deck, :func:`slide_cells`; ``code``
    shows every code cell's code) or ``"html"`` (a notebook page, all of it). Figures are embedded; scripts
    and styles come from ``_static/`` beside the page."""
    from nbconvert import HTMLExporter, SlidesExporter

    templates = {"extra_template_basedirs": [str(TEMPLATES)], "extra_template_paths": [str(TEMPLATES)]}
    if kind == "slides":
        exporter = SlidesExporter(
            template_name="gencourse_slides",
            reveal_url_prefix=f"{STATIC_NAME}/reveal.js",
            reveal_theme="white",
            reveal_number="c/t",
            reveal_scroll=True,
            embed_images=True,
            exclude_input_prompt=True,
            exclude_output_prompt=True,
            **templates,
        )
        nb = slide_cells(nb, code)
    elif kind == "html":
        exporter = HTMLExporter(template_name="gencourse_html", embed_images=True, **templates)
    else:
        raise ValueError(f"unknown page kind {kind!r}: use 'slides' or 'html'")
    page, _ = exporter.from_notebook_node(
        offline_outputs(nb), resources={"metadata": {"name": name}, "gencourse": {"static": STATIC_NAME}}
    )
    online = external_resources(page)
    if online:
        raise RuntimeError(
            f"the {kind} page for {name} would load from the network, so it would not work offline: "
            + "; ".join(online[:5])
            + ". Remove these from the notebook (or its outputs)."
        )
    return page


@dataclass
class Run:
    """One notebook executed for a page: how long it took, its slowest cell, and the error if it failed."""

    seconds: float
    slowest_cell: float
    error: str | None = None


def _cell_seconds(cell) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    try:
        start, end = (
            datetime.fromisoformat(timing[k].replace("Z", "+00:00")) for k in ("iopub.status.busy", "iopub.status.idle")
        )
    except (KeyError, ValueError):
        return 0.0
    return (end - start).total_seconds()


def execute(nb, path: Path, profile: str, timeout: int = 1800) -> Run:
    """Run ``nb`` in place in a fresh kernel started in the notebook's folder, with ``GENCOURSE_PROFILE``
    set to ``profile``. A failing cell stops the run; its error is kept in the outputs and in ``Run.error``."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of: {', '.join(PROFILES)}")
    env = {**os.environ, "GENCOURSE_PROFILE": profile, "GENCOURSE_PROGRESS": "0", "GENCOURSE_WIDGETS": "0"}
    client = NotebookClient(nb, timeout=timeout, resources={"metadata": {"path": str(Path(path).resolve().parent)}})
    start, error = time.perf_counter(), None
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        lines = [line for line in ANSI.sub("", str(exc)).splitlines() if line.strip()]
        error = f"{type(exc).__name__}: {lines[-1] if lines else exc}"
    seconds = time.perf_counter() - start
    return Run(seconds, max((_cell_seconds(c) for c in nb.cells if c.cell_type == "code"), default=0.0), error)


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def write_index(dest: Path, heading: str, intro: str, columns: list[str], rows: list[list[str]]) -> Path:
    """A plain index page (no scripts, no online styles). ``rows`` hold HTML-escaped cells."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: 0.4em 0.8em; border-bottom: 1px solid #ddd; }}
.failed {{ color: #b00020; font-weight: 600; }}
</style></head>
<body><h1>{html.escape(heading)}</h1>
<p>{intro}</p>
<table><thead><tr>{head}</tr></thead>
<tbody>
{body}
</tbody></table></body></html>
"""
    path = Path(dest) / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def export(
    src: Path,
    dest: Path,
    kind: str,
    *,
    run: bool,
    profile: str | None = None,
    timeout: int = 1800,
    code: bool = False,
) -> list[tuple[Path, Run | None]]:
    """Write a ``kind`` page (:func:`render`) per notebook of ``src`` into ``dest``, plus ``_static/`` and
    an ``index.html``. With ``run=True`` each notebook is first executed in ``profile`` (:func:`execute`);
    the index then lists its run time and slowest cell, and a failed one is marked (its page still shows
    the outputs up to the error)."""
    import torch

    from gencourse.config import device
    from gencourse.config import profile as active_profile

    paths, dest = notebook_paths(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    profile = profile or active_profile().name
    suffix = ".slides.html" if kind == "slides" else ".html"
    written, rows = [], []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        result = execute(nb, path, profile, timeout) if run else None
        target = dest / f"{path.stem}{suffix}"
        target.write_text(render(nb, kind, path.stem, code), encoding="utf-8")
        written.append((target, result))
        row = [f'<a href="{html.escape(target.name)}">{html.escape(path.stem)}</a>', html.escape(_title(nb, path.stem))]
        if result is not None:
            failed = f'<span class="failed">failed: {html.escape(result.error)}</span>' if result.error else "ok"
            row += [f"{result.seconds:.1f} s", f"{result.slowest_cell:.1f} s", failed]
        rows.append(row)
    copy_static(dest)
    columns = ["notebook", "title"] + (["run time", "slowest cell", "status"] if run else [])
    if run:
        total = sum(result.seconds for _, result in written)
        intro = (
            f"Each notebook run top to bottom in a fresh kernel in the <code>{html.escape(profile)}</code> profile "
            f"on {datetime.now().strftime('%Y-%m-%d %H:%M')}, {total:.0f} s in all (device {device()}, torch "
            f"{torch.__version__}). Run times include starting the kernel; trained models load from the cache "
            "once they are in it."
        )
    else:
        intro = "The notebooks as committed, without outputs (export with --execute to include them)."
    if kind == "slides":
        intro += (
            " Every code cell's code is shown." if code else " Code is shown only where a cell is tagged slide-code."
        ) + " Keys: arrows move, <kbd>Esc</kbd> overview, <kbd>S</kbd> speaker notes, <kbd>F</kbd> full screen."
    write_index(dest, "Course slides" if kind == "slides" else "Course notebooks", intro, columns, rows)
    return written


def export_slides(
    src: Path, dest: Path, *, run: bool = False, profile: str | None = None, timeout: int = 1800, code: bool = False
) -> list[tuple[Path, Run | None]]:
    """A reveal.js deck ``<name>.slides.html`` per notebook; with ``run=True`` executed first, so the
    deck shows its figures, else the notebook as committed (no outputs). Code cells show their code only
    when tagged ``slide-code``, or all of them with ``code=True`` (:func:`slide_cells`)."""
    return export(src, dest, "slides", run=run, profile=profile, timeout=timeout, code=code)


def export_html(src: Path, dest: Path, *, profile: str | None = None, timeout: int = 1800) -> list[tuple[Path, Run]]:
    """Execute every notebook in ``profile`` and write ``<name>.html`` with its outputs, and the index
    with the measured run time of each."""
    return export(src, dest, "html", run=True, profile=profile, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gencourse.export", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    slides = commands.add_parser("slides", help="a reveal.js deck per notebook")
    pages = commands.add_parser("html", help="run every notebook and write HTML pages with outputs")
    for sub in (slides, pages):
        sub.add_argument("src", type=Path, help="a notebook or a folder of notebooks (e.g. notebooks/)")
        sub.add_argument("dest", type=Path, help="output folder (e.g. build/slides)")
        sub.add_argument(
            "--profile", choices=PROFILES, help="profile to run the notebooks in (default: as gencourse.profile())"
        )
        sub.add_argument("--timeout", type=int, default=1800, help="seconds any one cell may take (default 1800)")
    slides.add_argument("--execute", action="store_true", help="run each notebook first so the deck shows its outputs")
    slides.add_argument(
        "--code", action="store_true", help=f"show every code cell's code (default: only cells tagged {SLIDE_CODE})"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "slides":
            results = export_slides(
                args.src, args.dest, run=args.execute, profile=args.profile, timeout=args.timeout, code=args.code
            )
        else:
            results = export_html(args.src, args.dest, profile=args.profile, timeout=args.timeout)
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    failed = 0
    for target, result in results:
        note = "" if result is None else f" (ran in {result.seconds:.1f} s, slowest cell {result.slowest_cell:.1f} s)"
        if result is not None and result.error:
            note, failed = f" FAILED: {result.error}", failed + 1
        print(f"{target}{note}")
    print(f"open {Path(args.dest) / 'index.html'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
