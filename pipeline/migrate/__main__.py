"""`python -m pipeline.migrate`: copy projects between Custom Vision compatible endpoints, e.g.

    python -m pipeline.migrate \\
        --source-endpoint https://westeurope.api.cognitive.microsoft.com --source-key $AZURE_TRAINING_KEY \\
        --target-endpoint https://seer.example.org --target-key $SEER_TRAINING_KEY \\
        --project "Parts inspection" --train-and-publish

Prints a progress bar per project and a summary table; exits 1 if anything failed (re-run it: what was copied is
skipped), 0 otherwise."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

from tqdm import tqdm

from pipeline.migrate.api import ApiError, RemoteProject, TrainingApi
from pipeline.migrate.copier import MAX_BATCH_IMAGES, ProjectCopier
from pipeline.migrate.publish import published_names, train_and_publish
from pipeline.migrate.report import ProjectReport, table


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.migrate",
        description="Copy Custom Vision projects (Azure Custom Vision or another Seer) into Seer through the "
        "Training API of both ends: settings and domain, tags, every image at original resolution with its tags, "
        "regions and metadata. Re-running resumes: images the target already holds are skipped.",
    )
    parser.add_argument(
        "--source-endpoint", required=True, help="e.g. https://<resource>.cognitiveservices.azure.com"
    )
    parser.add_argument("--source-key", required=True, help="the source's training key")
    parser.add_argument("--target-endpoint", required=True, help="the Seer to copy into")
    parser.add_argument("--target-key", required=True, help="the target's training key")
    parser.add_argument(
        "--project",
        action="append",
        default=[],
        metavar="NAME|ID",
        help="a source project to copy (repeatable); default: all of them",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be copied; write nothing")
    parser.add_argument(
        "--train-and-publish",
        action="store_true",
        help="train each project copied without failures and publish it under the source's published names",
    )
    parser.add_argument(
        "--prediction-resource-id",
        default=None,
        help="the prediction resource to publish to (default: the one the source published to)",
    )
    parser.add_argument("--training-timeout", type=float, default=3600.0, help="seconds to wait for training")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=MAX_BATCH_IMAGES,
        help=f"images per upload (1 to {MAX_BATCH_IMAGES})",
    )
    return parser


def _selected(projects: list[RemoteProject], wanted: Sequence[str]) -> tuple[list[RemoteProject], list[str]]:
    """The projects named or identified in `wanted` (all when empty), and the names that matched none."""
    if not wanted:
        return projects, []
    chosen = [p for p in projects if p.name in wanted or p.id.lower() in {w.lower() for w in wanted}]
    unknown = [
        w for w in wanted if not any(w in (p.name, p.id) or w.lower() == p.id.lower() for p in projects)
    ]
    return chosen, unknown


def _dry_run(source: TrainingApi, target: TrainingApi, project: RemoteProject) -> ProjectReport:
    report = ProjectReport(project.name)
    report.tags = len(source.tags(project.id))
    for image in source.images(project.id):
        report.copied += 1
        report.regions += len(image.regions or ())
    report.published = sorted(published_names(source, project.id))
    if any(p.name == project.name for p in target.projects()):
        report.name += " (resumes)"
    return report


def run(args: argparse.Namespace, source: TrainingApi, target: TrainingApi, out: TextIO) -> int:
    """Copies the selected projects and writes the summary to `out`; the exit status."""
    try:
        projects, unknown = _selected(source.projects(), args.project)
    except (ApiError, ValueError) as exc:
        out.write(f"Cannot list the source's projects: {exc}\n")
        return 1
    reports = [ProjectReport(name, failed=["no such project at the source"]) for name in unknown]
    for project in projects:
        if args.dry_run:
            try:
                reports.append(_dry_run(source, target, project))
            except (ApiError, ValueError) as exc:
                reports.append(ProjectReport(project.name, failed=[str(exc)]))
            continue
        report = ProjectReport(project.name)
        reports.append(report)
        try:
            total = source.image_count(project.id)
        except (ApiError, ValueError):
            total = None  # the bar counts without a total
        with tqdm(total=total, desc=project.name, unit="image", disable=None, file=sys.stderr) as bar:
            copier = ProjectCopier(source, target, args.batch_size, progress=bar.update)
            copied = copier.copy(project, report)
        if (
            copied is not None and args.train_and_publish and not report.failed
        ):  # never train an incomplete copy
            train_and_publish(
                source,
                target,
                project.id,
                copied.id,
                report,
                args.prediction_resource_id,
                args.training_timeout,
            )
    out.write(table(reports, dry_run=args.dry_run) + "\n")
    if args.dry_run:
        out.write("Dry run: nothing was written.\n")
    return 1 if any(r.failed for r in reports) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    if not 1 <= args.batch_size <= MAX_BATCH_IMAGES:
        get_args_parser().error(f"--batch-size must be 1 to {MAX_BATCH_IMAGES}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    source = TrainingApi(args.source_endpoint, args.source_key)
    target = TrainingApi(args.target_endpoint, args.target_key)
    try:
        return run(args, source, target, sys.stdout)
    finally:
        source.close()
        target.close()


if __name__ == "__main__":
    sys.exit(main())
