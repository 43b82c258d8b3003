"""Build the runtime images (`make runtimes`): each is rebuilt only when its recipe changed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from invocations.runtimes import RUNTIMES, UnknownRuntime, recipe_for
from invocations.runtimes.builder import RuntimeBuildError, runtime_image_build
from invocations.sandboxes.base import SandboxError
from invocations.sandboxes.docker import docker_api


class Command(BaseCommand):
    help = "Build the container image of each runtime, unless it exists from the same recipe."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "runtimes", nargs="*", metavar="RUNTIME", help=f"default: all ({', '.join(RUNTIMES)})"
        )
        parser.add_argument(
            "--force", action="store_true", help="rebuild even if the image is current"
        )
        parser.add_argument(
            "--mirror", default="", help="Debian mirror URL (default: the one apt uses)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            recipes = [recipe_for(runtime) for runtime in options["runtimes"] or RUNTIMES]
            client = docker_api(timeout=600)
        except (UnknownRuntime, SandboxError) as exc:
            raise CommandError(str(exc)) from exc
        verbose = options["verbosity"] >= 1
        for recipe in recipes:
            if verbose:
                self.stdout.write(f"{recipe.image}:")
            try:
                result = runtime_image_build(
                    client=client,
                    recipe=recipe,
                    force=options["force"],
                    mirror=options["mirror"],
                    log=self.stdout.write if verbose else _quiet,
                )
            except RuntimeBuildError as exc:
                raise CommandError(f"{recipe.image}: {exc}") from exc
            if not verbose:
                continue
            size = f"{result.size_bytes / 1e6:.1f} MB"
            if result.built:
                self.stdout.write(
                    f"  built in {result.seconds:.1f} s ({size}, recipe {result.recipe_hash[:12]})"
                )
            else:
                self.stdout.write(
                    f"  up to date ({size}, recipe {result.recipe_hash[:12]}): nothing to do"
                )


def _quiet(message: str) -> None:
    """Progress is not shown at verbosity 0."""
