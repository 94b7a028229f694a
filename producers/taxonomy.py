"""The risk taxonomy of TC260-003 Appendix A (GB/T 45654-2025): 5 categories, 31 risks.

Every moderation action and sanction names its risk by one of these stable codes, so incidents can
be counted per category across services, models and years.
"""

from __future__ import annotations

RISK_CATEGORIES: dict[str, str] = {
    "A.1": "violates core socialist values (违反社会主义核心价值观)",
    "A.2": "discrimination (歧视)",
    "A.3": "commercial violations (商业违法违规)",
    "A.4": "infringes others' lawful rights (侵犯他人合法权益)",
    "A.5": "unmet safety needs of the service type (无法满足特定服务类型的安全需求)",
}

RISKS: dict[str, str] = {
    "A.1.1": "subversion of state power",
    "A.1.2": "harming national security, interests or image",
    "A.1.3": "separatism",
    "A.1.4": "terrorism or extremism",
    "A.1.5": "ethnic hatred",
    "A.1.6": "violence or obscenity",
    "A.1.7": "false harmful information",
    "A.1.8": "other content prohibited by law",
    "A.2.1": "ethnicity",
    "A.2.2": "belief",
    "A.2.3": "nationality",
    "A.2.4": "region",
    "A.2.5": "gender",
    "A.2.6": "age",
    "A.2.7": "occupation",
    "A.2.8": "health",
    "A.2.9": "other discrimination",
    "A.3.1": "intellectual property",
    "A.3.2": "business ethics",
    "A.3.3": "trade secrets",
    "A.3.4": "monopoly or unfair competition",
    "A.3.5": "other commercial violations",
    "A.4.1": "physical or mental health",
    "A.4.2": "portrait rights",
    "A.4.3": "reputation",
    "A.4.4": "honour",
    "A.4.5": "privacy",
    "A.4.6": "personal information",
    "A.4.7": "other rights",
    "A.5.1": "inaccurate content",
    "A.5.2": "unreliable content",
}


def category_of(code: str) -> str:
    """The category code (``A.1``) of a risk code (``A.1.6``)."""
    return code.rsplit(".", 1)[0]


def check_risk_code(code: str) -> str:
    """Return ``code`` if it is a TC260-003 risk code; raise ValueError otherwise."""
    if code not in RISKS:
        raise ValueError(f"unknown risk category {code!r}: expected a TC260-003 code such as A.1.6")
    return code
