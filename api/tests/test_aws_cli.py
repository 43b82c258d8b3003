"""The AWS CLI, unchanged, pointed at Stratus with --endpoint-url."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from api.services import NewAccessKey
from api.tests.conftest import HELLO, REGION, zip_of

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

AWS = Path(sys.executable).with_name("aws")


@pytest.fixture
def aws(live_server: Any, access_key: NewAccessKey, tmp_path: Path) -> Any:
    """Run `aws lambda ...` with only the key in its environment: no profile, no config."""
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text("")
    credentials.write_text("")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": access_key.access_key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": access_key.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }

    def aws(*arguments: str) -> Any:
        completed = subprocess.run(
            [str(AWS), "lambda", *arguments, "--endpoint-url", live_server.url, "--output", "json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        return json.loads(completed.stdout) if completed.stdout.strip() else None

    return aws


def test_create_invoke_list_and_delete_with_the_cli(aws, role, tmp_path, live_worker):
    package = tmp_path / "function.zip"
    package.write_bytes(zip_of(HELLO))

    created = aws(
        "create-function",
        "--function-name", "cli-hello",
        "--runtime", "python3.11",
        "--role", role,
        "--handler", "lambda_function.lambda_handler",
        "--zip-file", f"fileb://{package}",
    )  # fmt: skip
    assert created["FunctionName"] == "cli-hello"
    assert created["State"] == "Active"

    invoked = aws(
        "invoke",
        "--function-name", "cli-hello",
        "--payload", '{"key1": "from the cli"}',
        "--log-type", "Tail",
        str(tmp_path / "out.json"),
    )  # fmt: skip
    assert invoked["StatusCode"] == 200
    assert invoked["ExecutedVersion"] == "$LATEST"
    assert json.loads((tmp_path / "out.json").read_text())["echo"] == "from the cli"
    log = base64.b64decode(invoked["LogResult"]).decode()
    assert "value1 = from the cli" in log
    assert "REPORT RequestId: " in log

    listed = aws("list-functions")
    assert [function["FunctionName"] for function in listed["Functions"]] == ["cli-hello"]

    aws("delete-function", "--function-name", "cli-hello")
    assert aws("list-functions")["Functions"] == []
