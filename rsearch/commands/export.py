"""`rsearch export`: a trained model out of rsearch (PyTorch, timm or ONNX), with a model card.

SOURCE is an experiment (choose its trial with --trial ID, or --best: the most accurate
trained trial of a regime within a latency budget, as `rsearch analyze --budgets` picks it)
or an `rsearch train --output` folder. The weights written are the ones that were evaluated
(the EMA's, where the recipe keeps one); model.json beside them holds the architecture, the
recipe, the data, minival and test top-1 with their standard errors, latency and its method,
params and FLOPs, the versions and the trial id. --format timm writes weights that
timm.create_model('resnetrsNN', num_classes=K) loads with strict=True; --format onnx checks the
export against PyTorch with ONNX Runtime (pip install 'rsearch[onnx]').

examples:
  rsearch export ~/rsearch_results/quickstart --best -o models/best
  rsearch export ~/rsearch_results/quickstart --best --regime 9 --budget-ms 2.5 --format onnx -o m
  rsearch export ~/rsearch_results/quickstart --trial 9ep-00003 --format pt -o models/t3
  rsearch export runs/rs50 --format timm -o models/rs50-timm
"""

from __future__ import annotations

from rsearch.commands.args import add_command, integer, number


def register(subparsers) -> None:
    p = add_command(subparsers, __name__)
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="an experiment folder, or an `rsearch train --output` folder",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="a new (or empty) folder")
    p.add_argument(
        "--format", choices=("pt", "timm", "onnx"), default="pt", help="what to write (default pt)"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", metavar="ID", help="the experiment's trial to export")
    which.add_argument(
        "--best",
        action="store_true",
        help="the most accurate trained trial of --regime within --budget-ms",
    )
    best = p.add_argument_group("with --best")
    best.add_argument("--regime", type=integer(1, why="epochs"), help="default: the longest")
    best.add_argument("--budget-ms", type=number(0, why="ms"), help="a latency budget (ms)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rsearch import export  # torch (see rsearch/commands/__init__.py)
    from rsearch.errors import UserError

    if (args.regime is not None or args.budget_ms is not None) and not args.best:
        raise UserError("--regime/--budget-ms: choose the trial with --best, or drop them")
    source = export.source_of(args.source, args.trial, args.best, args.regime, args.budget_ms)
    card = export.export(source, args.output, args.format)
    chosen = f"trial {card['trial_id']}" if card["trial_id"] else "the run"
    top1 = card.get("minival_top1")
    accuracy = f", minival top-1 {top1:.4f}" if isinstance(top1, float) else ""
    print(
        f"exported {chosen} ({card['architecture']['family']} depth {card['architecture']['depth']}"
        f" width {card['architecture']['width']:g} @{card['architecture']['resolution']}"
        f"{accuracy}) as {args.format} to {args.output}"
    )
    return 0
