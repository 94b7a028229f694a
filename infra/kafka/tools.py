"""The machine's tools the broker needs (Java 17+, Maven, keytool), and the one error that says
which is missing and how to install it."""

from __future__ import annotations

import shutil
from typing import Final

from aigc_audit.producers.errors import AuditError

JAVA_HINT: Final = (
    "install a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
)
MVN_HINT: Final = "install Apache Maven 3.6+ (e.g. apt-get install maven)"


class InfraError(AuditError):
    """The broker cannot be fetched, started or stopped; the first line of the message says why
    and what to do (the CLI shows only that line), later lines may carry a log tail."""


def require_tool(name: str, hint: str) -> str:
    """The absolute path of ``name`` on PATH.

    Raises InfraError("<name> not found on PATH: <hint>"), one line naming what to install.
    """
    path = shutil.which(name)
    if path is None:
        raise InfraError(f"{name} not found on PATH: {hint}")
    return path
