"""The configuration an invocation runs with, as the execution environments see it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FunctionSnapshot:
    """The configuration an invocation runs with, read once when it starts."""

    function_id: int
    owner_id: int
    name: str
    arn: str
    version: str
    revision_id: str
    runtime: str
    handler: str
    memory_size: int
    timeout: int
    ephemeral_storage: int
    code_sha256_hex: str
    code_sha256: str
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def pool_key(self) -> str:
        return f"{self.function_id}:{self.version}:{self.revision_id}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.name}"
