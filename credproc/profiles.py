"""Which AWS profiles run quilt-credproc, and for which registry: the link between the AWS
config file and the login store."""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path

from credproc import awsconfig, urls
from credproc.errors import InvalidURLError

DEFAULT_PROFILE = "quilt"


@dataclasses.dataclass(frozen=True)
class Linked:
    """A profile whose credential_process runs this helper for `registry`."""

    profile: str
    registry: str
    region: str | None


def default_profile() -> str:
    """The profile a command means when none is named: $AWS_PROFILE, as for the AWS CLI."""
    return os.environ.get("AWS_PROFILE", "").strip() or DEFAULT_PROFILE


def linked_profiles(config: Path) -> list[Linked]:
    """Every such profile in the AWS config file, in file order."""
    found = []
    for profile in awsconfig.read_profiles(config):
        registry = registry_in_command(profile.settings.get("credential_process", ""))
        if registry is not None:
            found.append(Linked(profile.name, registry, profile.settings.get("region") or None))
    return found


def registry_of_profile(config: Path, profile: str) -> str | None:
    """The registry a profile's credential_process names, if it runs this helper."""
    return next((p.registry for p in linked_profiles(config) if p.profile == profile), None)


def free_name(registry: str, taken: set[str]) -> str:
    """A profile name for `registry` that no other login's profile uses: `quilt` if free."""
    if DEFAULT_PROFILE not in taken:
        return DEFAULT_PROFILE
    host = "".join(c if c.isalnum() else "-" for c in urls.host(registry)).strip("-")
    name, number = f"quilt-{host}", 2
    while name in taken:
        name, number = f"quilt-{host}-{number}", number + 1
    return name


def registry_in_command(command: str) -> str | None:
    """`https://r` from `"/x/quilt-credproc" --registry https://r/`; None for other helpers."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not any("credproc" in os.path.basename(word) for word in words[:3]):
        return None
    raw = next((after for word, after in zip(words, words[1:]) if word == "--registry"), None)
    if raw is None:
        raw = next((w.partition("=")[2] for w in words if w.startswith("--registry=")), None)
    try:
        return None if raw is None else urls.registry(raw)
    except InvalidURLError:
        return None
