"""The inspector's use cases that span stages: an export bundle with its report inside."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.query.selection import Selection


def export_with_report(
    deployment: Deployment,
    selection: Selection,
    out_path: Path,
    *,
    exported_by: str,
    with_report: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Any:
    """Export ``selection`` (with its report) from the deployment's store; the export summary."""
    from aigc_audit.consumers.bundle.export import export_bundle

    store = deployment.read_store()
    report_html = None
    if with_report:
        from aigc_audit.consumers.report import build_report

        report_html = build_report(store, selection).html
    return export_bundle(
        store,
        selection,
        out_path,
        export_key=deployment.export_key(),
        exported_by=exported_by,
        report_html=report_html,
        progress=progress,
    )
