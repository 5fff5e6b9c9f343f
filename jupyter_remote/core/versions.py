"""On connect: do the notebook and the workers agree on what must match?

Payloads are cloudpickled in the notebook and opened on the workers, so the Python minor
version, cloudpickle, dask, distributed and jupyter_remote itself must agree. A mismatch is
warned about once per cluster (its address and scheduler id), naming each package and who
has what.
"""

from __future__ import annotations

import warnings

MUST_MATCH = ("python", "cloudpickle", "dask", "distributed", "jupyter_remote")

_warned: set[str] = set()


class VersionMismatchWarning(UserWarning):
    """The notebook and the workers of a cluster run different versions of what must match."""


def _normalize(package: str, version: str | None) -> str | None:
    if version is None:
        return None
    if package == "python":  # "3.11.7.final.0" -> "3.11": payloads only need the minor
        return ".".join(version.split(".")[:2])
    return version


def mismatches(versions: dict) -> list[str]:
    """Lines naming each package whose version differs between the notebook and workers.

    ``versions`` is what ``Client.get_versions(packages=["jupyter_remote"])`` returns.
    """
    mine = versions.get("client", {}).get("packages", {})
    lines = []
    for package in MUST_MATCH:
        here = _normalize(package, mine.get(package))
        there: dict[str, list[str]] = {}
        for address, info in (versions.get("workers") or {}).items():
            got = _normalize(package, (info or {}).get("packages", {}).get(package))
            if got != here:
                there.setdefault(str(got or "not installed"), []).append(address)
        for version, addresses in sorted(there.items()):
            who = addresses[0] if len(addresses) == 1 else f"{len(addresses)} workers ({addresses[0]}, ...)"
            lines.append(f"{package}: notebook has {here or 'not installed'}, {who} {version}")
    return lines


def check(client, name: str) -> list[str]:
    """Warn once per cluster address if the versions that must match differ; return the
    mismatch lines (empty when all match). Never raises: a failed check only logs."""
    address = str(getattr(client.scheduler, "address", name))
    try:
        # the scheduler's own id too: a new cluster may listen where a closed one did
        address += " " + str(client.scheduler_info(n_workers=0).get("id", ""))
    except Exception:
        pass
    if address in _warned:
        return []
    try:
        found = mismatches(client.get_versions(check=False, packages=["jupyter_remote"]))
    except Exception:  # the check must never stop a connection
        import logging

        logging.getLogger(__name__).debug("version check of %s failed", name, exc_info=True)
        return []
    _warned.add(address)
    if found:
        warnings.warn(
            f"cluster {name!r} runs versions that differ from this notebook's:\n  "
            + "\n  ".join(found)
            + "\nCode and values cross between them pickled: install the same versions on "
            "the workers (or in this notebook), or expect failures when unpickling.",
            VersionMismatchWarning,
            stacklevel=3,
        )
    return found
