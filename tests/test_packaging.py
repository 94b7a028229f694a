"""One import name: the wheel installs nothing but ``aigc_audit``, carries the schemas and the
query pack, and the client library works inside a service that has its own ``schemas`` and
``producers`` packages (every FastAPI project has a ``schemas``)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_FOLDERS = ("producers", "consumers", "schemas", "queries", "dashboards", "infra")


@pytest.fixture
def wheel(built_wheel: Path) -> Path:
    return built_wheel


def test_every_package_folder_is_listed_in_pyproject() -> None:
    # A mapped package-dir needs the packages spelled out: a new folder left off the list
    # would be missing from the wheel while the editable install still finds it.
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {"aigc_audit"} | {
        "aigc_audit." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in TOP_FOLDERS
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert listed == found


def test_the_wheel_holds_one_top_level_name(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"aigc_audit"}
    schemas = {
        Path(n).name for n in names if n.startswith("aigc_audit/schemas/") and n.endswith(".avsc")
    }
    assert {"aigc.audit.Generation.avsc", "aigc.audit.SignedBatch.avsc"} <= schemas
    assert any(n.startswith("aigc_audit/schemas/released/v1/") for n in names)
    sql = {n for n in names if n.startswith("aigc_audit/queries/") and n.endswith(".sql")}
    assert len(sql) >= 8
    assert {"aigc_audit/producers/client.py", "aigc_audit/consumers/cli/main.py"} <= names
    assert "aigc_audit/infra/kafka/pom.xml" in names
    # PEP 561: a service's type checker reads our annotations only when the marker is there.
    assert "aigc_audit/py.typed" in names
    (metadata,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "aigc_audit.consumers.cli.main:main" in zipfile.ZipFile(wheel).read(metadata).decode()


def test_the_client_works_inside_a_service_with_its_own_schemas(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            *[str(wheel)],
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The service's own packages, with our old names, ahead of ours on the path.
    service = tmp_path / "service"
    for name in ("schemas", "producers"):
        (service / name).mkdir(parents=True)
        (service / name / "__init__.py").write_text(f"OWNER = 'the service: {name}'\n")
    probe = (
        "import schemas, producers\n"
        "assert schemas.OWNER == 'the service: schemas' and producers.OWNER.endswith('producers')\n"
        "from hashlib import sha256\n"
        "from aigc_audit.producers import AuditClient, Generation, SigningKey, pseudonymise\n"
        "from aigc_audit.producers.codec import default_catalogue\n"
        "from aigc_audit.consumers.query.pack import load_query_pack\n"
        "import aigc_audit.producers as ours\n"
        f"assert ours.__file__.startswith({str(target)!r}), ours.__file__\n"
        "assert 'aigc.audit.Generation' in default_catalogue().names\n"
        "sent = []\n"
        "class Bus:\n"
        "    def publish(self, topic, key, value): sent.append(value)\n"
        "    def publish_many(self, topic, items): sent.extend(v for _, v in items)\n"
        "    def close(self): pass\n"
        "import tempfile\n"
        "with tempfile.TemporaryDirectory() as state, AuditClient(service_id='chat',\n"
        "        producer_id='chat-1', key=SigningKey.generate(), bus=Bus(),\n"
        "        state_dir=state, spool=False) as audit:\n"
        "    audit.generation(Generation(request_id='r', model_name='m', model_version='1',\n"
        "        filing_number='Beijing-M-1', modality='text', channel='app',\n"
        "        subject=pseudonymise(b'k' * 32, 'u'), input_sha256=sha256(b'p').digest(),\n"
        "        output_sha256=sha256(b'a').digest(), input_tokens=1, output_tokens=1,\n"
        "        explicit_label=True, safety_verdict='passed', latency_ms=1))\n"
        "assert len(sent) == 1 and sent[0][:2] == b'\\xc3\\x01', sent\n"
        "print(len(load_query_pack()))\n"
    )
    # -I ignores the source tree and PYTHONPATH: the service comes first, then the installed
    # copy, then this environment's site-packages for the third-party libraries.
    site = [p for p in sys.path if p.endswith("site-packages")]
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path[:0] = {[str(service), str(target), *site]!r}\n" + probe,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 8


def test_the_editable_install_works_inside_a_service_with_its_own_schemas(
    tmp_path: Path,
) -> None:
    # `make test` runs on the editable install; here from outside the source tree, so only
    # setuptools' editable finder can map aigc_audit's subpackages onto the folders.
    service = tmp_path / "service"
    for name in ("schemas", "producers"):
        (service / name).mkdir(parents=True)
        (service / name / "__init__.py").write_text(f"OWNER = 'the service: {name}'\n")
    probe = (
        f"import sys; sys.path.insert(0, {str(service)!r})\n"
        "import schemas, producers\n"
        "assert schemas.OWNER == 'the service: schemas', schemas.__file__\n"
        "from aigc_audit.producers.codec import default_catalogue\n"
        "import aigc_audit.producers as ours\n"
        f"assert ours.__file__.startswith({str(ROOT / 'producers')!r}), ours.__file__\n"
        "assert 'aigc.audit.Generation' in default_catalogue().names\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_no_module_imports_a_bare_top_level_name() -> None:
    # From the source tree `import producers` would still work (the folder is on sys.path in
    # tests), and would break in an installed copy: every import goes through aigc_audit.
    bare = tuple(f"{verb} {name}" for verb in ("import", "from") for name in TOP_FOLDERS)
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for top in (*TOP_FOLDERS, "tests", "aigc_audit")
        for path in (ROOT / top).rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if line.strip().startswith(bare) and line.strip().split()[1].split(".")[0] in TOP_FOLDERS
    ]
    assert offenders == []


def test_client_library_never_imports_the_platform() -> None:
    for path in (ROOT / "producers").rglob("*.py"):
        text = path.read_text()
        assert "aigc_audit.consumers" not in text, path
    probe = (
        "import sys, aigc_audit.producers, aigc_audit.producers.client\n"
        "print(any(m.startswith('aigc_audit.consumers') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr
