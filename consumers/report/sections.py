"""The report's sections: one per record-keeping duty of the Measures (see DOMAIN.md), in order.

Each builder takes the :class:`~consumers.report.scope.Scope` (store, selection, judging time)
and returns a :class:`~consumers.report.model.Section` whose figures hold aggregated numbers
only; every query groups in the store, none pulls raw rows. Sections 1–8 see only the selected
events; section 9 (the trail's own integrity) only the selection's time range.

=====  ===========  ===============================================================
 no.    key          duty
=====  ===========  ===============================================================
 1      volumes      generations by service, model version, modality; events per day
 2      incidents    incidents per TC260-003 risk; time from detection to action
 3      reports      reports to the authority; illegal content not yet reported
 4      sanctions    user sanctions by measure and reason, with their evidence
 5      deadlines    complaints and personal-information requests vs. deadlines
 6      labels       explicit and implicit label coverage per modality and model
 7      filing       generations by model versions without a filing number
 8      governance   training data, annotation quality, safety evaluations
 9      trail        checkpoints, batches, chain findings, quarantine
=====  ===========  ===============================================================
"""

from __future__ import annotations

from collections.abc import Callable

from aigc_audit.consumers.report.activity import filing, labels, volumes
from aigc_audit.consumers.report.governance import governance
from aigc_audit.consumers.report.incidents import incidents, reports
from aigc_audit.consumers.report.model import Section
from aigc_audit.consumers.report.people import deadlines, sanctions
from aigc_audit.consumers.report.scope import Scope
from aigc_audit.consumers.report.trail import trail

SectionBuilder = Callable[[Scope], Section]

SECTIONS: tuple[SectionBuilder, ...] = (
    volumes,
    incidents,
    reports,
    sanctions,
    deadlines,
    labels,
    filing,
    governance,
    trail,
)
"""The builders, in the order the report shows their sections."""


def build_sections(scope: Scope) -> list[Section]:
    """Every section for ``scope``, numbered 1–9 in :data:`SECTIONS` order."""
    sections = [build(scope) for build in SECTIONS]
    for number, section in enumerate(sections, start=1):
        section.number = number
    return sections
