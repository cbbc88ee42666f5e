"""The plugin pipeline's GitHub workflow: pull requests get no secret and no write access,
only a push to main signs and publishes, and every third-party action is pinned."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
PIPELINE = WORKFLOWS / "plugins.yml"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text("utf-8"))
    assert isinstance(document, dict), path
    # YAML 1.1 reads the key `on` as True; give it back its name.
    if True in document:
        document["on"] = document.pop(True)
    return document


@pytest.fixture
def workflow() -> dict[str, Any]:
    return _load(PIPELINE)


def _runs_on_pull_requests(job: dict[str, Any]) -> bool:
    condition = str(job.get("if", ""))
    return "github.event_name == 'push'" not in condition


def _steps_text(job: dict[str, Any]) -> str:
    return yaml.safe_dump(job)


def test_triggers(workflow: dict[str, Any]) -> None:
    assert set(workflow["on"]) == {"pull_request", "push"}
    assert workflow["on"]["push"] == {"branches": ["main"]}
    for path in WORKFLOWS.glob("*.y*ml"):
        assert "pull_request_target" not in path.read_text("utf-8"), path
        assert "pull_request_target" not in _load(path)["on"], path


def test_the_default_token_is_read_only(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}


def test_pull_request_jobs_have_no_secret_and_read_only_permissions(
    workflow: dict[str, Any],
) -> None:
    jobs = [job for job in workflow["jobs"].values() if _runs_on_pull_requests(job)]
    assert jobs, "some job checks pull requests"
    for job in jobs:
        text = _steps_text(job)
        assert "secrets." not in text and "environment" not in job
        assert set(job.get("permissions", {}).values()) <= {"read", "none"}


def test_the_checks_run_lint_then_scan_then_smoke(workflow: dict[str, Any]) -> None:
    (check,) = [job for job in workflow["jobs"].values() if _runs_on_pull_requests(job)]
    commands = [step.get("run", "") for step in check["steps"]]
    wanted = [
        "python -m pip install -e .",
        "python ci/lint.py plugins/*",
        "curl --fail --silent --show-error --location --retry 3 --max-time 300 --output "
        '"$RUNNER_TEMP/osv-pypi.zip" https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip',
        'python ci/scan.py --advisories "$RUNNER_TEMP/osv-pypi.zip" plugins/*',
        "python ci/smoke.py plugins/*",
    ]
    assert [c for c in commands if c] == wanted
    checkout = next(s for s in check["steps"] if "actions/checkout" in s.get("uses", ""))
    assert checkout["with"]["persist-credentials"] is False


def test_only_the_publish_job_sees_the_secret_and_only_on_push_to_main(
    workflow: dict[str, Any],
) -> None:
    with_secrets = [name for name, job in workflow["jobs"].items() if "secrets." in str(job)]
    assert with_secrets == ["publish"]
    publish = workflow["jobs"]["publish"]
    condition = publish["if"].replace(" ", "")
    assert "github.event_name=='push'" in condition and "github.ref=='refs/heads/main'" in condition
    assert "||" not in condition
    assert publish["needs"] == "check"
    assert publish["environment"] == "registry"
    assert publish["permissions"] == {"contents": "write"}
    assert "secrets." not in str(publish.get("env", {}))  # not job-wide: one step only
    steps = [s for s in publish["steps"] if "secrets." in str(s)]
    assert len(steps) == 1
    (signing,) = steps
    assert signing["env"] == {"REGISTRY_SIGNING_KEY": "${{ secrets.REGISTRY_SIGNING_KEY }}"}
    assert "secrets." not in signing["run"]  # reached through the environment, never inlined


def test_the_key_lives_in_a_private_temp_file_for_one_step(workflow: dict[str, Any]) -> None:
    (signing,) = [s for s in workflow["jobs"]["publish"]["steps"] if "secrets." in str(s)]
    script = signing["run"]
    assert "umask 077" in script and "chmod 600" in script
    assert 'mktemp --suffix=.key "$RUNNER_TEMP/' in script
    assert "trap 'rm -f \"$KEY_FILE\"' EXIT" in script
    assert script.index("chmod 600") < script.index('> "$KEY_FILE"')  # private before written
    command = " ".join(script.split("python -m registry_tools.gen_registry", 1)[1].split())
    assert command.replace("\\ ", "").startswith(
        'plugins --out site --root deeting_tui/store/official/root.json --key "$KEY_FILE" '
        "--base-url"
    )


def test_publishing_happens_after_signing(workflow: dict[str, Any]) -> None:
    steps = workflow["jobs"]["publish"]["steps"]
    runs = [step.get("run", "") for step in steps]
    sign = next(i for i, r in enumerate(runs) if "registry_tools.gen_registry" in r)
    publish = next(i for i, r in enumerate(runs) if "git push" in r)
    assert sign < publish
    assert "gh-pages" in runs[publish] and "--force" not in runs[publish]


def test_actions_are_pinned_by_commit(workflow: dict[str, Any]) -> None:
    for path in WORKFLOWS.glob("*.y*ml"):
        for job in _load(path)["jobs"].values():
            for step in job.get("steps", []):
                uses = step.get("uses")
                if uses is not None and not uses.startswith("./"):
                    assert PINNED.match(uses), f"{path.name}: {uses} is not pinned to a commit"


def test_the_workflow_publishes_where_deeting_syncs_by_default(workflow: dict[str, Any]) -> None:
    """The official registry's URL (a constant in the package) and root (shipped in it) are
    the ones the publish job signs under and publishes to, for the deeting/deeting repo."""
    from deeting_tui.store.official import OFFICIAL_ROOT, OFFICIAL_URL
    from deeting_tui.store.trust import verify_root

    steps = workflow["jobs"]["publish"]["steps"]
    script = next(s["run"] for s in steps if "registry_tools.gen_registry" in s.get("run", ""))
    command = " ".join(script.split())
    root = OFFICIAL_ROOT.relative_to(REPO).as_posix()
    assert f"--root {root}" in command
    check = next(s["run"] for s in steps if "root.json is missing" in s.get("run", ""))
    assert f"[ ! -f {root} ]" in check and "exit 1" in check
    assert '--base-url "https://${REPO%%/*}.github.io/${REPO#*/}"' in command
    repo = "deeting/deeting"
    owner, name = repo.split("/")
    assert f"https://{owner}.github.io/{name}/registry.json" == OFFICIAL_URL
    verify_root(OFFICIAL_ROOT.read_bytes(), now=datetime.now(UTC))
