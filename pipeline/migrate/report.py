"""What a migration run did, per project, and the table printed at its end."""

from __future__ import annotations

from dataclasses import dataclass, field

_COLUMNS = ("Project", "Tags", "Images copied", "Skipped", "Failed", "Regions", "Published")


@dataclass
class ProjectReport:
    """One project's outcome. `skipped` are images the target already held (it answered OKDuplicate); `failed`
    holds one line per image (or per project-level problem) that did not make it."""

    name: str
    tags: int = 0
    copied: int = 0
    skipped: int = 0
    regions: int = 0
    failed: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.failed.append(what)


def table(reports: list[ProjectReport], dry_run: bool = False) -> str:
    """A plain-text table (columns padded to fit), with the failures listed under it."""
    rows = [
        (
            r.name,
            str(r.tags),
            str(r.copied),
            str(r.skipped),
            str(len(r.failed)),
            str(r.regions),
            ", ".join(r.published) or "-",
        )
        for r in reports
    ]
    header = (
        _COLUMNS
        if not dry_run
        else ("Project", "Tags", "Images to copy", "Skipped", "Failed", "Regions", "Published")
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for report in reports:
        lines += [f"{report.name}: {failure}" for failure in report.failed]
    return "\n".join(lines)
