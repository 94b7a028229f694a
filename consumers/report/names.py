"""Bilingual names for the codes the store holds: risk codes, modalities, sanctions, families.

English names of the TC260-003 risks come from :mod:`producers.taxonomy`; the Chinese ones are
the short forms of the standard's Appendix A. An unknown code is shown as it is, never dropped.
"""

from __future__ import annotations

from aigc_audit.producers.taxonomy import RISK_CATEGORIES, RISKS

RISKS_ZH: dict[str, str] = {
    "A.1.1": "煽动颠覆国家政权",
    "A.1.2": "危害国家安全和利益、损害国家形象",
    "A.1.3": "煽动分裂国家",
    "A.1.4": "宣扬恐怖主义、极端主义",
    "A.1.5": "宣扬民族仇恨",
    "A.1.6": "宣扬暴力、淫秽色情",
    "A.1.7": "传播虚假有害信息",
    "A.1.8": "其他法律法规禁止的内容",
    "A.2.1": "民族歧视",
    "A.2.2": "信仰歧视",
    "A.2.3": "国别歧视",
    "A.2.4": "地域歧视",
    "A.2.5": "性别歧视",
    "A.2.6": "年龄歧视",
    "A.2.7": "职业歧视",
    "A.2.8": "健康歧视",
    "A.2.9": "其他歧视",
    "A.3.1": "侵犯知识产权",
    "A.3.2": "违反商业道德",
    "A.3.3": "泄露商业秘密",
    "A.3.4": "垄断和不正当竞争",
    "A.3.5": "其他商业违法违规",
    "A.4.1": "危害身心健康",
    "A.4.2": "侵害肖像权",
    "A.4.3": "侵害名誉权",
    "A.4.4": "侵害荣誉权",
    "A.4.5": "侵害隐私权",
    "A.4.6": "侵害个人信息权益",
    "A.4.7": "侵犯其他合法权益",
    "A.5.1": "内容不准确",
    "A.5.2": "内容不可靠",
}

CATEGORIES_ZH: dict[str, str] = {
    "A.1": "违反社会主义核心价值观",
    "A.2": "歧视",
    "A.3": "商业违法违规",
    "A.4": "侵犯他人合法权益",
    "A.5": "无法满足特定服务类型的安全需求",
}

UNCLASSIFIED = "unclassified"

MODALITIES: dict[str, str] = {
    "text": "文本",
    "image": "图片",
    "audio": "音频",
    "video": "视频",
    "code": "代码",
}

SANCTIONS: dict[str, str] = {
    "warning": "警示",
    "function_restriction": "限制功能",
    "suspension": "暂停服务",
    "termination": "终止服务",
    "reinstatement": "恢复",
}

FAMILIES: dict[str, str] = {
    "aigc.audit.Generation": "生成 · generations",
    "aigc.audit.ModerationAction": "内容处置与投诉 · moderation and complaints",
    "aigc.audit.UserSanction": "用户处置 · user sanctions",
    "aigc.audit.DataHandling": "数据处理 · data handling",
}

DETECTION_SOURCES: dict[str, str] = {
    "input_filter": "输入过滤",
    "output_filter": "输出过滤",
    "user_report": "用户举报",
    "manual_review": "人工巡查",
    "authority_notice": "主管部门通知",
}

REQUEST_KINDS: dict[str, str] = {
    "access": "查阅",
    "copy": "复制",
    "correct": "更正",
    "supplement": "补充",
    "delete": "删除",
}


def bilingual(zh: str | None, en: str) -> str:
    """``中文 en``, or ``en`` alone when there is no Chinese name."""
    return f"{zh} {en}" if zh else en


def risk_name(code: str | None) -> str:
    """``A.1.6 宣扬暴力、淫秽色情 violence or obscenity``; ``unclassified`` for none."""
    if not code or code == UNCLASSIFIED:
        return "未分类 unclassified"
    if code in RISKS:
        return f"{code} {RISKS_ZH.get(code, '')} {RISKS[code]}".replace("  ", " ")
    if code in RISK_CATEGORIES:
        return category_name(code)
    return code


def risk_short(code: str | None) -> str:
    """``A.1.6 宣扬暴力、淫秽色情``: short enough for a chart label."""
    if not code or code == UNCLASSIFIED:
        return "未分类 unclassified"
    return f"{code} {RISKS_ZH.get(code) or CATEGORIES_ZH.get(code) or ''}".strip()


def category_name(code: str | None) -> str:
    """``A.1 违反社会主义核心价值观 · violates core socialist values``."""
    if not code or code == UNCLASSIFIED:
        return "未分类 unclassified"
    zh = CATEGORIES_ZH.get(code)
    en = RISK_CATEGORIES.get(code, "").split(" (")[0]
    return f"{code} {zh} · {en}" if zh else code


def category_short(code: str | None) -> str:
    """``A.1 违反社会主义核心价值观``."""
    if not code or code == UNCLASSIFIED:
        return "未分类 unclassified"
    return f"{code} {CATEGORIES_ZH.get(code, '')}".strip()


def modality_name(value: str) -> str:
    return bilingual(MODALITIES.get(value), value)


def sanction_name(value: str) -> str:
    return bilingual(SANCTIONS.get(value), value)


def family_name(value: str) -> str:
    return FAMILIES.get(value, value)


def source_name(value: str) -> str:
    return bilingual(DETECTION_SOURCES.get(value), value)


def request_kind_name(value: str | None) -> str:
    return bilingual(REQUEST_KINDS.get(value or ""), value or "(none)")
