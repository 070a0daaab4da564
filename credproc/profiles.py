"""Which AWS profiles run quilt-credproc, and for which registry: the link between the AWS
config file and the login store."""

from __future__ import annotations

import dataclasses
import os
import shlex
from pathlib import Path

from credproc import awsconfig, urls
from credproc.errors import InvalidURLError


@dataclasses.dataclass(frozen=True)
class Linked:
    """A profile whose credential_process runs this helper for `registry`."""

    profile: str
    registry: str
    region: str | None


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
