"""The ``crucible-ray`` command line. Exit codes mean the same thing in every command:

0 success (for ``run`` and ``eval``: the program ran, whatever its status), 1 checks failed or
unexpected error, 2 bad usage or invalid request (``batch``: some input lines were invalid),
3 the platform cannot run sandboxes safely right now (or not before the deadline),
4 authentication failed, 130 interrupted.
"""

from __future__ import annotations

import typer

from crucible_ray.cli import batch, cluster, images, judging, local, remote, service, trust

app = typer.Typer(
    name="crucible-ray",
    help="Run untrusted code safely (Python, JavaScript, Go, C, C++, Rust, Java): hardened gVisor"
    " sandboxes behind Ray.",
    no_args_is_help=True,
    rich_markup_mode="markdown",  # docstring paragraphs wrap to the terminal
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(images.app, name="images")
trust.register(images.app)
app.add_typer(cluster.app, name="cluster")
local.register(app)
remote.register(app)
judging.register(app)
batch.register(app)
service.register(app)


def main() -> None:
    app()
