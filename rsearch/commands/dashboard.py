"""`rsearch dashboard`: write the HTML report of an experiment (Pareto fronts, scaling, trials).

Read an experiment's results store and write one self-contained HTML report
(plotly.js embedded, opens offline): Pareto front, FLOPs vs latency, scaling
curves, regularization vs size, learning curves, and a sortable trials table.
Works on a running search: it shows whatever trials exist.

examples:
  rsearch dashboard ~/rsearch_results/quickstart                 # -> .../quickstart/report.html
  rsearch dashboard ~/rsearch_results/quickstart --watch 30      # rewrite every 30 s while it runs
"""

from __future__ import annotations

import os
import time

from rsearch import storage
from rsearch.commands.args import add_command, add_experiment, number
from rsearch.errors import UserError

# experiment.json statuses after which the search writes nothing more (`--watch` stops).
FINAL_STATUSES = ("finished", "interrupted", "failed")


def register(subparsers) -> None:
    p = add_command(subparsers, __name__)
    add_experiment(p)
    p.add_argument(
        "-o",
        "--output",
        metavar="HTML",
        help="where to write the report (default: EXPERIMENT/report.html)",
    )
    p.add_argument(
        "--watch",
        type=number(0, why="seconds"),
        metavar="SECONDS",
        help="rewrite the report every SECONDS until the experiment is finished or interrupted "
        "(Ctrl-C stops); the page then reloads itself in the browser",
    )
    p.set_defaults(func=run)


def write_report(experiment_dir, output=None, refresh_s: float | None = None) -> tuple[str, str]:
    """Render the report once. Returns (path written, experiment status)."""
    # plotly and pyarrow are view dependencies: loaded by this command only, not by `rsearch`
    from dashboards.page import build_report
    from rsearch.results import read_experiment, write_file_atomic

    experiment = read_experiment(experiment_dir, allow_empty=True)
    final = experiment.meta.get("status") in FINAL_STATUSES
    text = build_report(experiment, refresh_s=None if final else refresh_s)
    if output is None:
        path = write_file_atomic(experiment_dir, "report.html", text.encode())
    else:
        folder, name = os.path.split(os.path.abspath(output))
        path = write_file_atomic(folder, name, text.encode())
    return path, str(experiment.meta.get("status"))


def run(args) -> int:
    from rsearch.results import read_experiment  # pyarrow (see write_report)

    # Refuse an empty experiment up front unless watching a search that is still starting.
    if not args.watch:
        read_experiment(args.experiment)
    if args.output is not None:  # the report's own folder is checked by writing the report
        if os.path.isdir(os.path.expanduser(args.output)):
            raise UserError(f"-o: {args.output} is a folder; expected the path of an .html file")
        storage.check_writable_folder(
            os.path.dirname(os.path.abspath(os.path.expanduser(args.output))), "-o"
        )
    while True:
        path, status = write_report(args.experiment, args.output, refresh_s=args.watch)
        print(path, flush=True)
        if not args.watch or status in FINAL_STATUSES:
            return 0
        time.sleep(args.watch)
